package sphinx

/*
#cgo pkg-config: pocketsphinx sphinxbase
#include <stdlib.h>
#include <pocketsphinx.h>
#include <sphinxbase/err.h>

// voiced_quiet_log swallows every log line of sphinxbase and pocketsphinx.
static void voiced_quiet_log(void *user_data, err_lvl_t lvl, const char *fmt, ...) {
	(void)user_data; (void)lvl; (void)fmt;
}

// voiced_silence turns the libraries' process-wide logging off. It is used
// instead of "-logfn", which makes every ps_init fclose the previous log file
// while other decoders may still be writing to it.
static void voiced_silence(void) {
	err_set_logfp(NULL);
	err_set_callback(voiced_quiet_log, NULL);
}

// voiced_config builds a decoder configuration; cmd_ln_init is variadic and
// cannot be called from Go directly. The options keep the final hypothesis
// cheap: fwdflat and bestpath are off (no second search pass at the end), the
// phone-loop lookahead is off (with it the word search lags pl_window frames
// behind and ps_end_utt has to catch up), and the library's own silence
// removal is off (it buffers frames around speech onsets and ends; the
// pipeline has its own VAD).
static cmd_ln_t *voiced_config(const char *hmm, const char *lm, const char *dict) {
	return cmd_ln_init(NULL, ps_args(), TRUE,
		"-hmm", hmm,
		"-lm", lm,
		"-dict", dict,
		"-samprate", "16000",
		"-fwdflat", "no",
		"-bestpath", "no",
		"-remove_silence", "no",
		"-pl_window", "0",
		NULL);
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/voiced-dev/voiced/internal/cmem"
)

var silenceOnce sync.Once

// initMu serializes decoder creation: configuration parsing and model loading
// touch the libraries' process-wide state (logging, error reporting).
var initMu sync.Mutex

// decoder is one pocketsphinx decoder. It is not safe for concurrent use; the
// owner (the pool or one stream) serializes every call.
type decoder struct {
	ps *C.ps_decoder_t
}

// newDecoder loads the models named by cfg into a fresh decoder. It is slow
// (hundreds of milliseconds): the models are read and parsed.
func newDecoder(cfg *Config) (*decoder, error) {
	silenceOnce.Do(func() { C.voiced_silence() })

	hmm := C.CString(cfg.HMM)
	defer C.free(unsafe.Pointer(hmm))
	lm := C.CString(cfg.LM)
	defer C.free(unsafe.Pointer(lm))
	dict := C.CString(cfg.Dict)
	defer C.free(unsafe.Pointer(dict))

	initMu.Lock()
	defer initMu.Unlock()
	conf := C.voiced_config(hmm, lm, dict)
	if conf == nil {
		return nil, fmt.Errorf("%w: invalid configuration", ErrDecoder)
	}
	ps := C.ps_init(conf)
	// The decoder keeps its own reference to the configuration.
	C.cmd_ln_free_r(conf)
	if ps == nil {
		return nil, fmt.Errorf("%w: cannot load models (hmm %s, lm %s, dict %s)", ErrDecoder, cfg.HMM, cfg.LM, cfg.Dict)
	}
	return &decoder{ps: ps}, nil
}

func (d *decoder) start() error {
	if C.ps_start_utt(d.ps) < 0 {
		return fmt.Errorf("%w: start utterance", ErrDecoder)
	}
	return nil
}

// process feeds samples to the decoder. The C side reads pcm only during the
// call (it copies into its own buffers), so passing the Go slice's backing
// array is allowed by the cgo pointer rules: it holds no Go pointers.
func (d *decoder) process(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	n := C.ps_process_raw(d.ps, (*C.int16)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)), 0, 0)
	if n < 0 {
		return fmt.Errorf("%w: process audio", ErrDecoder)
	}
	return nil
}

func (d *decoder) end() error {
	if C.ps_end_utt(d.ps) < 0 {
		return fmt.Errorf("%w: end utterance", ErrDecoder)
	}
	return nil
}

// hyp returns the current best hypothesis, "" when there is none.
func (d *decoder) hyp() string {
	var score C.int32
	s := C.ps_get_hyp(d.ps, &score)
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// free frees the decoder, and has the C allocator give its memory (tens of
// MiB of models) back to the system.
func (d *decoder) free() {
	if d.ps != nil {
		C.ps_free(d.ps)
		d.ps = nil
		cmem.Trim()
	}
}
