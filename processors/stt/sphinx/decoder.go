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
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/cmem"
)

var silenceOnce sync.Once

// initMu serializes decoder creation: configuration parsing and model loading
// touch the libraries' process-wide state (logging, error reporting).
var initMu sync.Mutex

// decoder is one pocketsphinx decoder. It is not safe for concurrent use; the
// owner (the pool or one stream) serializes every call.
type decoder struct {
	ps   *C.ps_decoder_t
	spot bool // it has the spotting grammar (Config.Spot)
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
	d := &decoder{ps: ps}
	if len(cfg.Spot) > 0 {
		if err := d.setSpot(cfg.Spot); err != nil {
			d.free()
			return nil, err
		}
	}
	return d, nil
}

// Search names: the language model's (pocketsphinx's default search) and
// the spotting grammar's.
const (
	lmSearch   = "_default"
	spotSearch = "voiced_spot"
)

// setSpot adds the spotting grammar: any sequence of the words of spot
// that are in the dictionary (a hyphenated word not in it by its parts,
// "mm-hm" as "mm hm" when both are). The language model stays the active
// search.
func (d *decoder) setSpot(spot []string) error {
	var alts []string
	seen := map[string]bool{}
	for _, w := range spot {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" || seen[w] {
			continue
		}
		seen[w] = true
		parts := []string{w}
		if !d.known(w) {
			parts = strings.Split(w, "-")
		}
		ok := true
		for _, p := range parts {
			ok = ok && p != "" && d.known(p) && !strings.ContainsAny(p, "<>|;()[]*+/\"")
		}
		if ok {
			alts = append(alts, strings.Join(parts, " "))
		}
	}
	if len(alts) == 0 {
		return nil
	}
	g := "#JSGF V1.0;\ngrammar voiced;\npublic <spot> = (" + strings.Join(alts, " | ") + ")+;\n"
	name := C.CString(spotSearch)
	defer C.free(unsafe.Pointer(name))
	gram := C.CString(g)
	defer C.free(unsafe.Pointer(gram))
	if C.ps_set_jsgf_string(d.ps, name, gram) < 0 {
		return fmt.Errorf("%w: spotting grammar", ErrDecoder)
	}
	d.spot = true
	return d.use(lmSearch)
}

// known reports whether w is in the decoder's dictionary.
func (d *decoder) known(w string) bool {
	cw := C.CString(w)
	defer C.free(unsafe.Pointer(cw))
	p := C.ps_lookup_word(d.ps, cw)
	if p == nil {
		return false
	}
	C.free(unsafe.Pointer(p))
	return true
}

// use makes the search named name the active one.
func (d *decoder) use(name string) error {
	n := C.CString(name)
	defer C.free(unsafe.Pointer(n))
	if C.ps_set_search(d.ps, n) < 0 {
		return fmt.Errorf("%w: no search %q", ErrDecoder, name)
	}
	return nil
}

// spotWords decodes pcm (a whole utterance) with the spotting grammar and
// returns the grammar's words heard in it, with their times from the start
// of pcm (silence and noise segments left out). The language model is the
// active search again when it returns.
func (d *decoder) spotWords(pcm []int16) (words []frame.Word, err error) {
	if err := d.use(spotSearch); err != nil {
		return nil, err
	}
	defer func() {
		if e := d.use(lmSearch); e != nil && err == nil {
			err = e
		}
	}()
	if err := d.start(); err != nil {
		return nil, err
	}
	if err := d.process(pcm); err != nil {
		d.end()
		return nil, err
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	// Frames are 10 ms (pocketsphinx's default frame rate, 100/s). The
	// grammar search numbers them from the decoder's first utterance,
	// not this one's: the path's first segment (silence, mostly) starts
	// this utterance.
	const frameDur = 10 * time.Millisecond
	first := C.int(-1)
	for it := C.ps_seg_iter(d.ps); it != nil; it = C.ps_seg_next(it) {
		var sf, ef C.int
		C.ps_seg_frames(it, &sf, &ef)
		if first < 0 {
			first = sf
		}
		w := C.GoString(C.ps_seg_word(it))
		if w == "" || w[0] == '<' || w[0] == '[' || w[0] == '(' {
			continue // <sil>, <s>, </s>, [NOISE], (NULL)
		}
		words = append(words, frame.Word{Text: w, Start: time.Duration(sf-first) * frameDur, End: time.Duration(ef+1-first) * frameDur})
	}
	return words, nil
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
