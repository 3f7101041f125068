package audio

// G.722 (ITU-T Recommendation G.722, 09/2012): 7 kHz wideband audio at
// 64 kbit/s. A quadrature mirror filter splits 16 kHz audio into two
// 8 kHz sub-bands; the lower band is coded with 6-bit ADPCM, the upper
// with 2-bit ADPCM, and each pair of 16 kHz samples becomes one byte (the
// upper band's code in the two high bits). This is mode 1 of the
// Recommendation, the only one RTP carries (payload type 9, RFC 3551
// §4.5.2: its RTP clock runs at 8000 Hz although the audio is sampled at
// 16000 Hz, so 20 ms are 320 samples, 160 bytes and 160 timestamp units).
//
// The arithmetic is the Recommendation's fixed-point arithmetic, so that
// an encoder and a decoder built from it agree with any other conforming
// implementation sample for sample.

// Quadrature mirror filter coefficients (G.722 table 11), h0 … h23. The
// filter is symmetric: h(23-i) = h(i). Their sum is 2^13.
var qmfCoef = [24]int32{
	3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876,
	3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11, 3,
}

// Decision levels of the lower band's 6-bit quantizer (G.722 table 12),
// for magnitudes in units of the scale factor/4096: level k separates the
// quantizer intervals k and k+1 (k = 1 … 29).
var lowLevels = [30]int32{
	0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650,
	714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980,
	2195, 2557, 2919,
}

// Output values of the lower band's 6-bit inverse quantizer, by interval
// 1 … 30 (G.722 table 14), in units of the scale factor/4096.
var lowOutput6 = [31]int32{
	0, 17, 54, 91, 130, 170, 211, 254, 300, 347, 396, 447, 501, 558, 618,
	682, 750, 822, 899, 982, 1072, 1170, 1279, 1399, 1535, 1689, 1873,
	2088, 2376, 2738, 3101,
}

// Output values of the 4-bit inverse quantizer the predictors of both
// ends run on (the code without its two least significant bits), by
// interval 1 … 7 (G.722 table 14).
var lowOutput4 = [8]int32{0, 150, 323, 530, 786, 1121, 1612, 2557}

// Logarithmic scale factor multipliers of the lower band by 4-bit
// interval (G.722 table 15, W_L).
var lowLogStep = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}

// Inverse logarithm table (G.722 table 16, ILB): round(2048·2^(i/32)).
var invLog = [32]int32{
	2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599,
	2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371,
	3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
}

const (
	highLevel    = 564              // the upper band quantizer's one decision level
	highOutSmall = 202              // its output values
	highOutLarge = 926              //
	highStepLow  = -214             // W_H of the inner interval
	highStepHigh = 798              // W_H of the outer one
	lowMaxLog    = 18432            // bounds of the logarithmic scale factors
	highMaxLog   = 22528            //
	lowMinDet    = 32               // the scale factors they start from
	highMinDet   = 8                //
	bandMin      = -16384           // reconstructed sub-band signals are 15 bits
	bandMax      = 16383            //
	lowLogShift  = 8                // scale factor = ILB·2^(log>>11 - shift + 2)
	highLogShift = 10               //
	g722Delay    = len(qmfCoef) / 2 //
)

// The 6-bit codes (G.722 table 13) of lower band intervals 1 … 30, for a
// positive and a negative prediction error, and the reverse maps.
var (
	lowCodePos, lowCodeNeg [31]uint8
	// lowValue6 is the inverse quantizer output of each 6-bit code and
	// lowValue4 of each 4-bit code, both signed, in units of
	// scale factor/4096; lowStep4 is W_L of each 4-bit code.
	lowValue6 [64]int32
	lowValue4 [16]int32
	lowStep4  [16]int32
)

func init() {
	for k := 1; k <= 30; k++ {
		lowCodePos[k] = uint8(62 - k)
		if k <= 2 {
			lowCodeNeg[k] = uint8(64 - k)
		} else {
			lowCodeNeg[k] = uint8(34 - k)
		}
		lowValue6[lowCodePos[k]] = lowOutput6[k]
		lowValue6[lowCodeNeg[k]] = -lowOutput6[k]
	}
	// Codes 0 to 3 are never sent; the Recommendation decodes them as
	// the smallest negative value.
	for c := range 4 {
		lowValue6[c] = -lowOutput6[1]
	}
	// A 4-bit code is the 6-bit code of the interval pair it covers: 1 … 7
	// negative (15 - its interval), 8 … 14 positive, 0 and 15 zero.
	for c := 1; c <= 7; c++ {
		lowValue4[c] = -lowOutput4[8-c]
		lowValue4[c+7] = lowOutput4[8-c]
		lowStep4[c] = lowLogStep[8-c]
		lowStep4[c+7] = lowLogStep[8-c]
	}
	lowStep4[0], lowStep4[15] = lowLogStep[0], lowLogStep[0]
}

// band is the ADPCM state of one sub-band, shared in form by the encoder
// and the decoder: both run the same predictor on the same codes.
type band struct {
	s      int32    // signal estimate: the pole and zero sections' sum
	sz     int32    // the zero section's output
	det    int32    // quantizer scale factor
	log    int32    // its logarithm
	a1, a2 int32    // pole section coefficients
	b      [6]int32 // zero section coefficients
	d      [6]int32 // past quantized differences, doubled
	p1, p2 bool     // signs (negative) of the last partial reconstructions
	r1     int32    // the last reconstructed signal, doubled
}

func sat16(v int32) int32 { return min(max(v, -32768), 32767) }

// adapt runs the adaptive predictor (G.722 blocks 4L/4H) on the quantized
// difference d of one sample: it updates the pole and zero coefficients
// and computes the estimate of the next sample.
func (bd *band) adapt(d int32) {
	// Partial reconstruction: the signs steer the pole adaptation.
	p := bd.sz+d < 0
	same1, same2 := p == bd.p1, p == bd.p2
	bd.p1, bd.p2 = p, bd.p1

	// Second pole coefficient first: it uses the old first one.
	a2 := bd.a2 * 127 >> 7
	if same2 {
		a2 += 128
	} else {
		a2 -= 128
	}
	if t := min(max(bd.a1, -8191), 8191); same1 {
		a2 += (-t) >> 5
	} else {
		a2 += t >> 5
	}
	bd.a2 = min(max(a2, -12288), 12288)
	a1 := bd.a1 * 255 >> 8
	if same1 {
		a1 += 192
	} else {
		a1 -= 192
	}
	lim := 15360 - bd.a2
	bd.a1 = min(max(a1, -lim), lim)

	// Zero section: leak every coefficient, and push it towards the
	// correlation of this difference's sign with each past one's.
	neg := d < 0
	for i := range bd.b {
		bd.b[i] = bd.b[i] * 255 >> 8
		if d != 0 {
			if neg == (bd.d[i] < 0) {
				bd.b[i] += 128
			} else {
				bd.b[i] -= 128
			}
		}
	}
	copy(bd.d[1:], bd.d[:5])
	bd.d[0] = sat16(d << 1)
	bd.sz = 0
	for i := range bd.b {
		bd.sz += bd.b[i] * bd.d[i] >> 15
	}

	// Pole section on the reconstructed signal.
	r := sat16((bd.s + d) << 1)
	bd.s = sat16(bd.sz + bd.a1*r>>15 + bd.a2*bd.r1>>15)
	bd.r1 = r
}

// scale converts the logarithmic scale factor back (G.722 blocks 3L/3H).
func (bd *band) scale(shift int32) {
	v := invLog[(bd.log>>6)&31]
	if e := bd.log>>11 - shift; e < 0 {
		v >>= -e
	} else {
		v <<= e
	}
	bd.det = v << 2
}

// lowUpdate feeds a lower band 4-bit code to the predictor and adapts the
// scale factor.
func (bd *band) lowUpdate(code4 uint8) {
	bd.adapt(bd.det * lowValue4[code4] >> 12)
	bd.log = min(max(bd.log*127>>7+lowStep4[code4], 0), lowMaxLog)
	bd.scale(lowLogShift)
}

// highDiff is the upper band's quantized difference of code.
func (bd *band) highDiff(code uint8) int32 {
	v := int32(highOutLarge)
	if code&1 != 0 {
		v = highOutSmall
	}
	if code < 2 {
		v = -v
	}
	return bd.det * v >> 12
}

// highUpdate feeds an upper band code and its quantized difference to the
// predictor and adapts the scale factor.
func (bd *band) highUpdate(code uint8, d int32) {
	bd.adapt(d)
	step := int32(highStepHigh)
	if code&1 != 0 {
		step = highStepLow
	}
	bd.log = min(max(bd.log*127>>7+step, 0), highMaxLog)
	bd.scale(highLogShift)
}

// G722Encoder encodes 16 kHz mono PCM into G.722 at 64 kbit/s. It is a
// stream: each call continues the audio of the last. The zero value is not
// ready; use NewG722Encoder. Not safe for concurrent use.
type G722Encoder struct {
	x       [len(qmfCoef)]int32 // the filter's input, newest last
	low     band
	high    band
	pending int16 // an odd sample left from the last call
	odd     bool
}

// NewG722Encoder returns an encoder at the start of a stream.
func NewG722Encoder() *G722Encoder {
	e := &G722Encoder{}
	e.low.det, e.high.det = lowMinDet, highMinDet
	return e
}

// Encode appends the G.722 code of pcm (16 kHz) to dst and returns it: one
// byte for every two samples. An odd last sample is kept and coded with
// the first sample of the next call.
func (e *G722Encoder) Encode(dst []byte, pcm []int16) []byte {
	if e.odd && len(pcm) > 0 {
		dst = append(dst, e.encodePair(e.pending, pcm[0]))
		pcm, e.odd = pcm[1:], false
	}
	for len(pcm) >= 2 {
		dst = append(dst, e.encodePair(pcm[0], pcm[1]))
		pcm = pcm[2:]
	}
	if len(pcm) == 1 {
		e.pending, e.odd = pcm[0], true
	}
	return dst
}

func (e *G722Encoder) encodePair(x0, x1 int16) byte {
	// Transmit QMF (G.722 §3.2): shift the pair in and split.
	copy(e.x[:], e.x[2:])
	e.x[22], e.x[23] = int32(x0), int32(x1)
	var even, odd int32 // Σ over the newest sample's phase, and the other
	for i := 0; i < len(e.x); i += 2 {
		odd += qmfCoef[i] * e.x[23-i]
		even += qmfCoef[i+1] * e.x[22-i]
	}
	xl := (odd + even) >> 14
	xh := (odd - even) >> 14

	// Lower band: 6-bit adaptive quantizer (block 1L).
	el := sat16(xl - e.low.s)
	mag := el
	if el < 0 {
		mag = -(el + 1)
	}
	k := 1
	for k < 30 && mag >= lowLevels[k]*e.low.det>>12 {
		k++
	}
	il := lowCodePos[k]
	if el < 0 {
		il = lowCodeNeg[k]
	}
	e.low.lowUpdate(il >> 2)

	// Upper band: 2-bit adaptive quantizer (block 1H).
	eh := sat16(xh - e.high.s)
	mag = eh
	if eh < 0 {
		mag = -(eh + 1)
	}
	var ih uint8 // 0 and 1 negative, 2 and 3 positive; odd is the inner interval
	if mag < highLevel*e.high.det>>12 {
		ih = 1
	}
	if eh >= 0 {
		ih += 2
	}
	e.high.highUpdate(ih, e.high.highDiff(ih))
	return ih<<6 | il
}

// G722Decoder decodes G.722 at 64 kbit/s into 16 kHz mono PCM. It is a
// stream: each call continues the audio of the last. The zero value is not
// ready; use NewG722Decoder. Not safe for concurrent use.
type G722Decoder struct {
	sum, diff [g722Delay]int32 // the receive filter's inputs, newest first
	low       band
	high      band
}

// NewG722Decoder returns a decoder at the start of a stream.
func NewG722Decoder() *G722Decoder {
	d := &G722Decoder{}
	d.low.det, d.high.det = lowMinDet, highMinDet
	return d
}

// Decode appends the audio of code (two 16 kHz samples a byte) to dst and
// returns it. Every byte is valid G.722.
func (d *G722Decoder) Decode(dst []int16, code []byte) []int16 {
	for _, c := range code {
		il, ih := c&63, c>>6

		// Lower band: the 6-bit inverse quantizer for the output, the
		// 4-bit one for the predictor (blocks 2L–6L).
		rl := min(max(d.low.s+d.low.det*lowValue6[il]>>12, bandMin), bandMax)
		d.low.lowUpdate(il >> 2)

		dh := d.high.highDiff(ih)
		rh := min(max(d.high.s+dh, bandMin), bandMax)
		d.high.highUpdate(ih, dh)

		// Receive QMF (G.722 §4.4).
		copy(d.sum[1:], d.sum[:g722Delay-1])
		copy(d.diff[1:], d.diff[:g722Delay-1])
		d.sum[0], d.diff[0] = rl+rh, rl-rh
		var y0, y1 int32
		for i := range g722Delay {
			y0 += qmfCoef[2*i] * d.diff[i]
			y1 += qmfCoef[2*i+1] * d.sum[i]
		}
		dst = append(dst, int16(sat16(y0>>11)), int16(sat16(y1>>11)))
	}
	return dst
}
