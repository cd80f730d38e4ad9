package sim

import (
	"os"
	"strconv"
	"testing"

	"github.com/totem-gcs/totem/totem"
)

func TestLeadTrace(t *testing.T) {
	s, _ := strconv.Atoi(os.Getenv("LEAD_SEED"))
	f, _ := os.Create("/tmp/trace.txt")
	defer f.Close()
	r := Run(Options{Seed: uint64(s), Engine: TotemEngine, Trace: f, DescribeFrame: totem.Describe})
	t.Log(r.Violations)
}
