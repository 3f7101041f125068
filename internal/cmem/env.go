package cmem

import "os"

// envSet reports whether the operator tuned glibc's allocator through the
// environment.
func envSet() bool {
	for _, k := range []string{"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"} {
		if _, ok := os.LookupEnv(k); ok {
			return true
		}
	}
	return false
}
