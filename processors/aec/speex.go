package aec

/*
#cgo pkg-config: speexdsp
#include <stdlib.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

static int set_int(SpeexPreprocessState *st, int req, int v) {
	return speex_preprocess_ctl(st, req, &v);
}
static int echo_rate(SpeexEchoState *st, int rate) {
	return speex_echo_ctl(st, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
}
*/
import "C"

import (
	"unsafe"
)

// canceller is speexdsp's adaptive echo canceller (multidelay block
// frequency-domain filter) followed by its residual echo suppressor. Not
// safe for concurrent use.
type canceller struct {
	st    *C.SpeexEchoState
	pp    *C.SpeexPreprocessState
	frame int
	out   *C.spx_int16_t // frame samples, C memory
	mic   *C.spx_int16_t
	ref   *C.spx_int16_t
}

func newCanceller(frame, tail, rate, suppress int) *canceller {
	c := &canceller{frame: frame}
	c.st = C.speex_echo_state_init(C.int(frame), C.int(tail))
	C.echo_rate(c.st, C.int(rate))
	c.pp = C.speex_preprocess_state_init(C.int(frame), C.int(rate))
	// The residual echo suppressor works through the noise suppressor's gains:
	// without it the suppression setting does nothing.
	C.set_int(c.pp, C.SPEEX_PREPROCESS_SET_DENOISE, 1)
	C.set_int(c.pp, C.SPEEX_PREPROCESS_SET_AGC, 0)
	C.set_int(c.pp, C.SPEEX_PREPROCESS_SET_DEREVERB, 0)
	C.set_int(c.pp, C.SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, C.int(suppress))
	C.set_int(c.pp, C.SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, C.int(suppress/2))
	C.speex_preprocess_ctl(c.pp, C.SPEEX_PREPROCESS_SET_ECHO_STATE, unsafe.Pointer(c.st))
	n := C.size_t(frame) * C.size_t(unsafe.Sizeof(C.spx_int16_t(0)))
	c.out = (*C.spx_int16_t)(C.malloc(n))
	c.mic = (*C.spx_int16_t)(C.malloc(n))
	c.ref = (*C.spx_int16_t)(C.malloc(n))
	return c
}

// process cancels the echo of ref in mic (both frame samples) into out.
func (c *canceller) process(mic, ref, out []int16) {
	m := unsafe.Slice((*int16)(unsafe.Pointer(c.mic)), c.frame)
	r := unsafe.Slice((*int16)(unsafe.Pointer(c.ref)), c.frame)
	o := unsafe.Slice((*int16)(unsafe.Pointer(c.out)), c.frame)
	copy(m, mic)
	copy(r, ref)
	C.speex_echo_cancellation(c.st, c.mic, c.ref, c.out)
	C.speex_preprocess_run(c.pp, c.out)
	copy(out, o)
}

func (c *canceller) close() {
	if c.st == nil {
		return
	}
	C.speex_preprocess_state_destroy(c.pp)
	C.speex_echo_state_destroy(c.st)
	C.free(unsafe.Pointer(c.out))
	C.free(unsafe.Pointer(c.mic))
	C.free(unsafe.Pointer(c.ref))
	c.st, c.pp = nil, nil
}
