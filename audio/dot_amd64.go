package audio

// dotFMA is dot with AVX2 and FMA; len(h) must be a multiple of 8 and
// len(x) >= len(h).
//
//go:noescape
func dotFMA(h, x []float32) float32

//go:noescape
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

func xgetbv0() (eax, edx uint32)

// hasFMA reports whether the CPU and OS support AVX2 and FMA.
var hasFMA = func() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 { // XMM and YMM state enabled
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0 // AVX2
}()

// bestDot is the dot product the resampler uses on this machine.
var bestDot = func() func(h, x []float32) float32 {
	if hasFMA {
		return dotFMA
	}
	return dot
}()
