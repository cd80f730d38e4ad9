package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totem-gcs/totem/client"
)

// TestListenJSONContract pins the exact JSON lines of cpg listen.
func TestListenJSONContract(t *testing.T) {
	msg := &client.Message{Group: "g", NodeID: 2, PID: 77, Guarantee: client.Safe, Data: []byte("hi")}
	if got, want := formatEvent(msg, true), `{"type":"deliver","group":"g","nodeid":2,"pid":77,"guarantee":"safe","data":"aGk="}`; got != want {
		t.Errorf("deliver:\n got %s\nwant %s", got, want)
	}
	msg.Guarantee = client.Agreed
	if !strings.Contains(formatEvent(msg, true), `"guarantee":"agreed"`) {
		t.Errorf("agreed: %s", formatEvent(msg, true))
	}
	cc := &client.ConfChange{
		Group:   "g",
		Members: []client.Member{{NodeID: 1, PID: 10}},
		Left: []client.Member{
			{NodeID: 2, PID: 20, Reason: client.ReasonLeave}, {NodeID: 3, PID: 30, Reason: client.ReasonNodeDown},
			{NodeID: 3, PID: 31, Reason: client.ReasonProcDown},
		},
	}
	want := `{"type":"confchg","group":"g","members":[{"nodeid":1,"pid":10}],"joined":[],"left":[{"nodeid":2,"pid":20,"reason":"leave"},{"nodeid":3,"pid":30,"reason":"nodedown"},{"nodeid":3,"pid":31,"reason":"procdown"}]}`
	if got := formatEvent(cc, true); got != want {
		t.Errorf("confchg:\n got %s\nwant %s", got, want)
	}
	cc = &client.ConfChange{Group: "g", Members: []client.Member{{NodeID: 1, PID: 10}, {NodeID: 4, PID: 40}},
		Joined: []client.Member{{NodeID: 4, PID: 40, Reason: client.ReasonNodeUp}}}
	want = `{"type":"confchg","group":"g","members":[{"nodeid":1,"pid":10},{"nodeid":4,"pid":40}],"joined":[{"nodeid":4,"pid":40,"reason":"nodeup"}],"left":[]}`
	if got := formatEvent(cc, true); got != want {
		t.Errorf("confchg joined:\n got %s\nwant %s", got, want)
	}
	cc = &client.ConfChange{Group: "g", Members: []client.Member{{NodeID: 1, PID: 10}},
		Left: []client.Member{{NodeID: 4, PID: 40, Reason: client.ReasonNodeDown}}, Transitional: true, Ring: client.Ring{Rep: 1, Seq: 20}}
	want = `{"type":"confchg","group":"g","members":[{"nodeid":1,"pid":10}],"joined":[],"left":[{"nodeid":4,"pid":40,"reason":"nodedown"}],"transitional":true,"ring_id":"1.20"}`
	if got := formatEvent(cc, true); got != want {
		t.Errorf("transitional confchg in ring 1.20:\n got %s\nwant %s", got, want)
	}
}

func runCtl(args ...string) (int, string) {
	var out bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &out)
	return code, out.String()
}

func TestExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"status"}, {"groups", "--json"}, {"members", "g"}, {"stats"}, {"links"}, {"cpg", "send", "g", "x"}} {
		if code, out := runCtl(append([]string{"--socket", missing}, args...)...); code != exitNotConnected || !strings.Contains(out, "cannot connect") {
			t.Errorf("%v without a daemon: exit %d, %s", args, code, out)
		}
	}
	t.Setenv("TOTEMD_SOCKET", missing)
	if code, out := runCtl("status"); code != exitNotConnected || !strings.Contains(out, missing) {
		t.Errorf("TOTEMD_SOCKET not honoured: %d %s", code, out)
	}
	for _, args := range [][]string{{}, {"bogus"}, {"members"}, {"status", "extra"}, {"cpg", "dance", "g"}, {"--nope"}} {
		if code, _ := runCtl(args...); code != exitError {
			t.Errorf("%v: exit %d, want %d", args, code, exitError)
		}
	}
	if code, out := runCtl("--help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Errorf("--help: %d %s", code, out)
	}
}

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "authkey")
	if code, out := runCtl("keygen", path); code != exitOK {
		t.Fatalf("keygen: %d %s", code, out)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o400 || fi.Size() == 0 {
		t.Fatalf("key file %v %v", fi, err)
	}
	if code, out := runCtl("keygen", path); code != exitError || !strings.Contains(out, "exists") {
		t.Fatalf("keygen over an existing key: %d %s", code, out)
	}
}

func TestMessages(t *testing.T) {
	d := "x"
	ms, _ := messages(&d, 3, 0, nil)
	if len(ms) != 3 || string(ms[2]) != "x" {
		t.Fatalf("DATA --count 3: %q", ms)
	}
	ms, _ = messages(nil, 2, 100, nil)
	if len(ms) != 2 || len(ms[1]) != 100 || !strings.HasPrefix(string(ms[1]), "msg 1 ") {
		t.Fatalf("generated: %q", ms)
	}
	ms, _ = messages(nil, 0, 0, strings.NewReader("a\n\nb\n"))
	if len(ms) != 3 || string(ms[0]) != "a" || len(ms[1]) != 0 || string(ms[2]) != "b" {
		t.Fatalf("lines: %q", ms)
	}
}
