package main

import (
	"io"

	"github.com/voiced-dev/voiced/internal/bench"
)

// benchCommand runs `voiced bench [--quick] [--out DIR] ...`: the turn
// latency and session density harness, writing the report (see
// bench.Usage).
func benchCommand(args []string, stdout, stderr io.Writer) error {
	return bench.Command(args, stdout, stderr)
}
