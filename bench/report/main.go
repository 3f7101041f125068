// Command report runs voiced's benchmark harness and writes the report; it
// is `voiced bench` for when no binary is built.
//
//	go run ./bench/report [--quick] [--out DIR] [--micro FILE] [--e2e FILE]
package main

import (
	"fmt"
	"os"

	"github.com/voiced-dev/voiced/bench"
)

func main() {
	if err := bench.Command(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
