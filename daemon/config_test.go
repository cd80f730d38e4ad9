package daemon

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/totem"
)

const goodConfig = `
cluster_name = "c"
transport = "udpu"

[totem]
profile = "fast"
token = 200
join = "20ms"

[ipc]
socket = "/tmp/x.sock"
allow_uids = [1000]

[[node]]
nodeid = 1
addrs = ["10.0.0.1"]

[[node]]
nodeid = 2
addrs = ["10.0.0.2:6000"]
`

func TestConfigGood(t *testing.T) {
	cfg, lines, probs := LoadConfig([]byte(goodConfig))
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	local := []netip.Addr{netip.MustParseAddr("10.0.0.2")}
	if ps := CheckConfig(&cfg, lines, local); len(ps) > 0 {
		t.Fatalf("check: %v", ps)
	}
	id, err := cfg.ResolveNodeID(local)
	if err != nil || id != 2 {
		t.Fatalf("node id from addresses: %d %v", id, err)
	}
	e, err := cfg.EngineConfig(id)
	if err != nil {
		t.Fatal(err)
	}
	fast := totem.FastConfig(2)
	if e.Token != 200*time.Millisecond || e.Join != 20*time.Millisecond || e.Merge != fast.Merge || e.NodeID != 2 {
		t.Fatalf("engine config: %+v", e)
	}
	if e.Consensus != e.RuntimeToken()*6/5 {
		t.Fatalf("consensus not re-derived from the new token: %v", e.Consensus)
	}
	def, _ := (&Config{Totem: TotemOptions{Profile: "default"}}).EngineConfig(1)
	if def.Token != totem.DefaultToken {
		t.Fatalf("default profile token %v", def.Token)
	}
}

// TestCheckConfigReportsEveryProblem checks that one run reports every
// problem, each on its line with a fix.
func TestCheckConfigReportsEveryProblem(t *testing.T) {
	text := `nodeid = 7
trasport = "udpu"
port = 70000
gomaxprocs = -2
[totem]
profile = "fastest"
token = "3 s"
window_size = 5
max_messages = 10
[logging]
level = "loud"
[[node]]
nodeid = 1
addrs = ["10.0.0.1"]
[[node]]
nodeid = 1
addrs = ["not-an-ip"]
[ipc]
queue_bytes = 1048576
`
	cfg, lines, probs := LoadConfig([]byte(text))
	probs = append(probs, CheckConfig(&cfg, lines, nil)...)
	want := map[string]int{ // key -> line
		"trasport":           2,
		"port":               3,
		"gomaxprocs":         4,
		"totem.profile":      6,
		"totem.token":        7,
		"totem.max_messages": 9,
		"logging.level":      11,
		"node[1].nodeid":     16,
		"node[1].addrs":      17,
		"nodeid":             1,
		"ipc.queue_bytes":    19,
	}
	for key, line := range want {
		found := false
		for _, p := range probs {
			if p.Key == key && p.Line == line {
				found = true
				if p.Fix == "" {
					t.Errorf("%s: no fix", p)
				}
			}
		}
		if !found {
			t.Errorf("no problem for %s on line %d in:\n%v", key, line, probs)
		}
	}
	for _, p := range probs {
		if p.Key == "trasport" && !strings.Contains(p.Fix, `"transport"`) {
			t.Errorf("unknown option without a suggestion: %s", p)
		}
	}
}

func TestSyntaxErrorLine(t *testing.T) {
	for text, line := range map[string]int{"a = 1\n[totem\n": 2, "a = 1\nb = [\n": 2, "a = 1\nb = \"x\n": 2, "a = 1\nb c\nd = 2\n": 2} {
		_, _, probs := LoadConfig([]byte(text))
		if len(probs) != 1 || probs[0].Line != line || !strings.Contains(probs[0].Message, "syntax") {
			t.Errorf("%q: %v, want line %d", text, probs, line)
		}
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	cfg, _, probs := LoadConfig([]byte(goodConfig))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	BindFlags(fs, &cfg)
	err := fs.Parse([]string{"--token", "1s", "--socket", "/run/other.sock", "--node", "5=127.0.0.1:7000",
		"--node", "6=127.0.0.1:7001", "--allow-gid", "10", "--profile", "default", "--nodeid", "6"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Totem.Token.D() != time.Second || cfg.IPC.Socket != "/run/other.sock" || cfg.Totem.Profile != "default" || cfg.NodeID != 6 {
		t.Fatalf("flags not applied: %+v", cfg)
	}
	if len(cfg.Nodes) != 2 || cfg.Nodes[0].NodeID != 5 || cfg.Nodes[1].Addrs[0] != "127.0.0.1:7001" {
		t.Fatalf("--node did not replace the node list: %+v", cfg.Nodes)
	}
	if len(cfg.IPC.AllowUIDs) != 1 || len(cfg.IPC.AllowGIDs) != 1 {
		t.Fatalf("allow lists: %v %v", cfg.IPC.AllowUIDs, cfg.IPC.AllowGIDs)
	}
	if cfg.Totem.Join.D() != 20*time.Millisecond {
		t.Fatalf("file value lost: join %v", cfg.Totem.Join.D())
	}
}

// TestEveryOptionHasAFlag walks the config structure and checks that each
// option of the file has a flag.
func TestEveryOptionHasAFlag(t *testing.T) {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	BindFlags(fs, &cfg)
	special := map[string]string{
		"ipc.allow_uids": "allow-uid", "ipc.allow_gids": "allow-gid",
		"ipc.queue_messages": "ipc-queue-messages", "ipc.queue_bytes": "ipc-queue-bytes",
		"logging.level": "log-level", "logging.format": "log-format",
		"link.bind": "link-bind", "link.mtu": "link-mtu", "link.ttl": "link-ttl",
		"node.nodeid": "node", "node.addrs": "node", "node.name": "node",
	}
	var walk func(t reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for key, i := range fieldsByTag(rt) {
			ft := rt.Field(i).Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, prefix+key+".")
				continue
			}
			full := prefix + key
			name, ok := special[full]
			if !ok {
				parts := strings.Split(full, ".")
				name = strings.ReplaceAll(parts[len(parts)-1], "_", "-")
			}
			if fs.Lookup(name) == nil {
				t.Errorf("no flag --%s for option %s", name, full)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	s, err := openState(dir)
	if err != nil || s.RingSeq() != 0 {
		t.Fatal(s.RingSeq(), err)
	}
	if err := s.Save(42); err != nil {
		t.Fatal(err)
	}
	s.Save(7) // older: ignored
	s2, err := openState(dir)
	if err != nil || s2.RingSeq() != 42 {
		t.Fatalf("reloaded %d %v", s2.RingSeq(), err)
	}
	a, err := s2.NextIncarnation(1000)
	if err != nil || a != 1000 {
		t.Fatal(a, err)
	}
	// The clock stepped back: the incarnation still grows.
	if b, _ := s2.NextIncarnation(10); b != 1001 {
		t.Fatalf("incarnation after a clock step back: %d", b)
	}
}

func TestLinkTimers(t *testing.T) {
	var c Config
	// The fast profile's token would give 5 ms / 25 ms: the floors apply.
	if hb, lt := c.LinkTimers(50 * time.Millisecond); hb != 10*time.Millisecond || lt != 100*time.Millisecond {
		t.Errorf("fast profile: %v %v", hb, lt)
	}
	if hb, lt := c.LinkTimers(400 * time.Millisecond); hb != 40*time.Millisecond || lt != 200*time.Millisecond {
		t.Errorf("token 400ms: %v %v", hb, lt)
	}
	if hb, lt := c.LinkTimers(3650 * time.Millisecond); hb != 100*time.Millisecond || lt != 500*time.Millisecond {
		t.Errorf("default profile: %v %v", hb, lt)
	}
	c.LinkHeartbeat, c.LinkTimeout = Duration(time.Second), Duration(3*time.Second)
	if hb, lt := c.LinkTimers(50 * time.Millisecond); hb != time.Second || lt != 3*time.Second {
		t.Errorf("explicit: %v %v", hb, lt)
	}
}
