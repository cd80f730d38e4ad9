package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totem-gcs/totem/rrp"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "authkey")
	if err := rrp.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(`nodeid = 1
keyfile = "`+key+`"
[[node]]
nodeid = 1
addrs = ["127.0.0.1:5405"]
`), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"--check-config", "--config", good}, &out, &errb); code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("good config: exit %d\n%s%s", code, out.String(), errb.String())
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte(`nodeid = 1
keyfile = "`+key+`"
[totem]
tokn = 100
window_size = 0
max_messages = 999
[[node]]
nodeid = 1
addrs = ["127.0.0.1:5405"]
`), 0o644)
	out.Reset()
	code := run([]string{"--check-config", "--config", bad}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "line 4: totem.tokn: unknown option (fix: did you mean \"token\"?)") ||
		!strings.Contains(out.String(), "line 6: totem.max_messages") {
		t.Fatalf("bad config: exit %d\n%s", code, out.String())
	}
	// A flag fixes what the file got wrong.
	out.Reset()
	if code := run([]string{"--check-config", "--config", good, "--nodeid", "9"}, &out, &errb); code != 1 || !strings.Contains(out.String(), "nodeid 9 is not in the node list") {
		t.Fatalf("--nodeid 9: exit %d\n%s", code, out.String())
	}
	// An explicit config file that does not exist is an error.
	if code := run([]string{"--check-config", "--config", filepath.Join(dir, "none.toml")}, &out, &errb); code != 1 {
		t.Fatalf("missing config: exit %d", code)
	}
}
