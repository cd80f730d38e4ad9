package daemon

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// FuzzLoadConfig feeds arbitrary text to the config loader and checker, as
// `totemd --check-config` would read it: every outcome is a list of
// problems (never a panic), each placed on a line of the file (or none),
// and a config with no problem yields an engine configuration.
func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("totemd.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("nodeid = 1\n[[node]]\nnodeid = 1\naddrs = [\"127.0.0.1:5405\"]\n"))
	f.Add([]byte("[totem]\ntoken = \"250ms\"\nwindow_size = -1\n"))
	f.Add([]byte("[totem\nprofile = 3\n"))
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, lines, probs := LoadConfig(data)
		lineCount := bytes.Count(data, []byte("\n")) + 1
		for _, p := range probs {
			if p.Line < 0 || p.Line > lineCount {
				t.Fatalf("problem on line %d of a %d-line file: %v", p.Line, lineCount, p)
			}
			if strings.TrimSpace(p.Message) == "" {
				t.Fatalf("problem without a message: %+v", p)
			}
		}
		if len(probs) > 0 {
			return
		}
		checked := CheckConfig(&cfg, lines, local)
		for _, p := range checked {
			if p.Line < 0 || p.Line > lineCount || strings.TrimSpace(p.Message) == "" {
				t.Fatalf("bad problem from the checker: %+v", p)
			}
		}
		if len(checked) == 0 && cfg.NodeID != 0 {
			if _, err := cfg.EngineConfig(cfg.NodeID); err != nil {
				t.Fatalf("a config without problems has no engine config: %v", err)
			}
		}
	})
}
