#ifndef VOICED_FLITE_SPEAK_H
#define VOICED_FLITE_SPEAK_H

#include <stdint.h>
#include <flite.h>

/* Voice indices for voiced_flite_voice. */
enum { VOICED_FLITE_SLT, VOICED_FLITE_AWB, VOICED_FLITE_RMS, VOICED_FLITE_NVOICES };

/* voiced_flite_setup initializes flite and registers the built-in voices.
 * It is not thread-safe and must run once per process. It returns 0 on
 * success and -1 when a voice failed to register. */
int voiced_flite_setup(void);

/* voiced_flite_voice returns a registered voice, or NULL. */
cst_voice *voiced_flite_voice(int idx);

/* voiced_flite_speak synthesizes text sentence by sentence with voice,
 * streaming audio to the Go side through the handle h. It returns 0 when the
 * text was spoken completely, 1 when the Go side asked it to stop, and -1 on a
 * flite failure. */
int voiced_flite_speak(cst_voice *voice, const char *text, uintptr_t h);

#endif
