package sim

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

func TestLeadSeeds(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LEAD_SEEDS"))
	start, _ := strconv.Atoi(os.Getenv("LEAD_START"))
	bad := 0
	for s := start; s < start+n; s++ {
		r := Run(Options{Seed: uint64(s), Engine: TotemEngine})
		if len(r.Violations) > 0 {
			bad++
			fmt.Printf("seed %d nodes %d: %d violations, first: %v\n", s, r.Nodes, len(r.Violations), r.Violations[0])
		}
	}
	fmt.Printf("bad %d of %d\n", bad, n)
}
