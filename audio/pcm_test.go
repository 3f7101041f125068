package audio

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestPCM16RoundTrip(t *testing.T) {
	t.Parallel()
	b := []byte{0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x80, 0x34, 0x12}
	want := []int16{0, 1, -1, 32767, -32768, 0x1234}
	got, err := DecodePCM16([]int16{7}, b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, append([]int16{7}, want...)) {
		t.Errorf("DecodePCM16 = %v, want 7 then %v", got, want)
	}
	if enc := EncodePCM16([]byte{9}, want); !slices.Equal(enc, append([]byte{9}, b...)) {
		t.Errorf("EncodePCM16 = %x, want 09%x", enc, b)
	}
}

func TestDecodePCM16OddLength(t *testing.T) {
	t.Parallel()
	dst := []int16{1, 2}
	got, err := DecodePCM16(dst, []byte{1, 2, 3})
	if !errors.Is(err, ErrOddLength) {
		t.Fatalf("error %v, want ErrOddLength", err)
	}
	if !slices.Equal(got, dst) {
		t.Errorf("dst changed to %v on error", got)
	}
}

func TestPCM16NoAlloc(t *testing.T) {
	b := make([]byte, 640)
	s := make([]int16, 0, 320)
	enc := make([]byte, 0, 640)
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		s, err = DecodePCM16(s[:0], b)
		enc = EncodePCM16(enc[:0], s)
	})
	if err != nil || allocs != 0 {
		t.Errorf("allocs %.1f, err %v", allocs, err)
	}
}

func TestFloat32(t *testing.T) {
	t.Parallel()
	s := []int16{0, 16384, -16384, 32767, -32768}
	f := ToFloat32(nil, s)
	wantF := []float32{0, 0.5, -0.5, 32767.0 / 32768, -1}
	if !slices.Equal(f, wantF) {
		t.Errorf("ToFloat32 = %v, want %v", f, wantF)
	}
	if back := FromFloat32(nil, f); !slices.Equal(back, s) {
		t.Errorf("FromFloat32(ToFloat32(s)) = %v, want %v", back, s)
	}
	in := []float32{1, 1.5, -1.5, float32(math.NaN()), float32(math.Inf(1)), 0.25, -0.00001}
	want := []int16{32767, 32767, -32768, 0, 32767, 8192, 0}
	if got := FromFloat32(nil, in); !slices.Equal(got, want) {
		t.Errorf("FromFloat32(%v) = %v, want %v", in, got, want)
	}
}

func TestLevels(t *testing.T) {
	t.Parallel()
	square := []int16{-32768, -32768, -32768, -32768}
	if got := DBFS(square); got != 0 {
		t.Errorf("full-scale square: %v dBFS, want 0", got)
	}
	sine := tone(16000, 1000, 32767, 0, 16000)
	if got := DBFS(sine); math.Abs(got-(-3.0103)) > 0.01 {
		t.Errorf("full-scale sine: %.4f dBFS, want -3.01", got)
	}
	half := tone(16000, 1000, 16384, 0, 16000)
	if got := RMS(half); math.Abs(got-0.5/math.Sqrt2) > 1e-4 {
		t.Errorf("half-scale sine RMS %.5f, want %.5f", got, 0.5/math.Sqrt2)
	}
	if got := DBFS(make([]int16, 10)); !math.IsInf(got, -1) {
		t.Errorf("silence: %v dBFS, want -Inf", got)
	}
	if RMS(nil) != 0 {
		t.Error("RMS(nil) != 0")
	}
}

func TestDownmix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       []int16
		channels int
		want     []int16
	}{
		{[]int16{100, 200, -32768, -32768, 32767, 32767, 1, 2}, 2, []int16{150, -32768, 32767, 1}},
		{[]int16{1, 2, 3}, 2, []int16{1}}, // trailing partial frame dropped
		{[]int16{3, 6, 9, -3, -6, -9}, 3, []int16{6, -6}},
		{[]int16{5, 6}, 1, []int16{5, 6}},
	}
	for _, tt := range tests {
		if got := Downmix(nil, tt.in, tt.channels); !slices.Equal(got, tt.want) {
			t.Errorf("Downmix(%v, %d) = %v, want %v", tt.in, tt.channels, got, tt.want)
		}
		in := slices.Clone(tt.in)
		if got := Downmix(in[:0], in, tt.channels); !slices.Equal(got, tt.want) {
			t.Errorf("in-place Downmix(%v, %d) = %v, want %v", tt.in, tt.channels, got, tt.want)
		}
	}
}

func TestGain(t *testing.T) {
	t.Parallel()
	in := []int16{1000, -1000, 20000, -20000, 3}
	if got, want := Gain(nil, in, 2), []int16{2000, -2000, 32767, -32768, 6}; !slices.Equal(got, want) {
		t.Errorf("Gain x2 = %v, want %v", got, want)
	}
	s := slices.Clone(in)
	// 1.5 rounds to even: 2.
	if got, want := Gain(s[:0], s, 0.5), []int16{500, -500, 10000, -10000, 2}; !slices.Equal(got, want) {
		t.Errorf("in-place Gain x0.5 = %v, want %v", got, want)
	}
	if g := DBToGain(20); math.Abs(g-10) > 1e-12 {
		t.Errorf("DBToGain(20) = %v", g)
	}
}
