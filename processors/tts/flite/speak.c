#include "speak.h"
#include "_cgo_export.h"

cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);

static cst_voice *voices[VOICED_FLITE_NVOICES];

/* Upper bound on tokens per utterance, so that text without sentence breaks
 * still starts speaking before all of it has been analysed. */
#define MAX_UTT_TOKENS 200

int voiced_flite_setup(void)
{
    int i;

    flite_init();
    voices[VOICED_FLITE_SLT] = register_cmu_us_slt(NULL);
    voices[VOICED_FLITE_AWB] = register_cmu_us_awb(NULL);
    voices[VOICED_FLITE_RMS] = register_cmu_us_rms(NULL);
    for (i = 0; i < VOICED_FLITE_NVOICES; i++)
        if (voices[i] == NULL)
            return -1;
    return 0;
}

cst_voice *voiced_flite_voice(int idx)
{
    if (idx < 0 || idx >= VOICED_FLITE_NVOICES)
        return NULL;
    return voices[idx];
}

/* on_chunk is flite's audio streaming callback: it hands the new samples
 * w->samples[start:start+size] to Go. */
static int on_chunk(const cst_wave *w, int start, int size, int last,
                    cst_audio_streaming_info *asi)
{
    (void)last;
    if (size <= 0)
        return CST_AUDIO_STREAM_CONT;
    if (voicedFliteChunk((uintptr_t)asi->userdata, w->samples + start, size,
                         w->sample_rate, w->num_channels) != 0)
        return CST_AUDIO_STREAM_STOP;
    return CST_AUDIO_STREAM_CONT;
}

/* speak_utt synthesizes one utterance of tokens and deletes it. It returns
 * 0 when it was spoken, 1 when streaming was stopped, -1 on failure. */
static int speak_utt(cst_voice *voice, cst_utterance *utt, uintptr_t h)
{
    cst_audio_streaming_info *asi;
    int rc;

    /* The streaming info lives on the utterance, not on the shared voice,
     * so concurrent utterances each stream to their own caller. The
     * utterance owns it and frees it in delete_utterance. */
    asi = new_audio_streaming_info();
    asi->asc = on_chunk;
    asi->userdata = (void *)h;
    feat_set(utt->features, "streaming_info", audio_streaming_info_val(asi));

    utt = flite_do_synth(utt, voice, utt_synth_tokens);
    if (utt == NULL)
        return -1; /* flite_do_synth deleted it */
    rc = feat_present(utt->features, "Interrupted") ? 1 : 0;
    delete_utterance(utt);
    return rc;
}

int voiced_flite_speak(cst_voice *voice, const char *text, uintptr_t h)
{
    cst_tokenstream *ts;
    cst_breakfunc utt_break = default_utt_break;
    cst_utterance *utt = NULL;
    cst_relation *tokens = NULL;
    cst_item *t;
    const char *tok;
    int ntok = 0, rc = 0, eof, empty;

    if (feat_present(voice->features, "utt_break"))
        utt_break = val_breakfunc(feat_val(voice->features, "utt_break"));

    ts = ts_open_string(text,
        get_param_string(voice->features, "text_whitespace", NULL),
        get_param_string(voice->features, "text_singlecharsymbols", NULL),
        get_param_string(voice->features, "text_prepunctuation", NULL),
        get_param_string(voice->features, "text_postpunctuation", NULL));
    if (ts == NULL)
        return -1;

    for (;;)
    {
        eof = ts_eof(ts);
        tok = eof ? "" : ts_get(ts);
        empty = (tok == NULL || tok[0] == '\0');

        /* The token read ends the utterance collected so far when the text
         * ends, the utterance is too long, or the voice's break rule (end
         * of sentence punctuation, blank lines) says so. */
        if (ntok > 0 &&
            (empty || ntok >= MAX_UTT_TOKENS || utt_break(ts, tok, tokens)))
        {
            if (voicedFliteStopped(h))
            {
                rc = 1;
                break;
            }
            rc = speak_utt(voice, utt, h); /* consumes utt */
            utt = NULL;
            tokens = NULL;
            ntok = 0;
            if (rc != 0)
                break;
        }
        if (eof)
            break;
        if (empty)
            continue;

        if (utt == NULL)
        {
            utt = new_utterance();
            tokens = utt_relation_create(utt, "Token");
        }
        t = relation_append(tokens, NULL);
        item_set_string(t, "name", tok);
        item_set_string(t, "whitespace", ts->whitespace);
        item_set_string(t, "prepunctuation", ts->prepunctuation);
        item_set_string(t, "punc", ts->postpunctuation);
        ntok++;
    }

    if (utt != NULL)
        delete_utterance(utt);
    ts_close(ts);
    return rc;
}
