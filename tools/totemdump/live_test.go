//go:build linux

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/totem-gcs/totem/rrp"
	"github.com/totem-gcs/totem/totem"
)

// TestLiveCapture captures on the loopback interface of a network
// namespace created for the test while datagrams are sent on it.
func TestLiveCapture(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: live capture needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: the ip tool (iproute2) is not installed")
	}
	b := make([]byte, 3)
	rand.Read(b)
	ns := "rrpt-dump-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create network namespaces here (%v: %s)", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	if err := rrp.GenerateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	key, _ := rrp.ReadKey(keyFile)

	// Everything below runs on one thread moved into the namespace; the
	// thread is discarded at the end (never unlocked).
	done := make(chan struct{})
	var out, errb bytes.Buffer
	var rc int
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			return
		}
		sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: rrp.DefaultPort})
		if err != nil {
			t.Error(err)
			return
		}
		defer sock.Close()
		go func() {
			// Keep sending until the capture has what it needs.
			tok := totem.Encode(&totem.Token{Ring: totem.RingID{Rep: 1, Seq: 2}, TokenSeq: 3})
			for seq := uint64(1); ; seq++ {
				select {
				case <-done:
					return
				default:
				}
				dg, _ := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 1, To: 2, Incarnation: 1, Seq: seq}, tok, key)
				sock.WriteToUDP(dg, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: rrp.DefaultPort})
				time.Sleep(10 * time.Millisecond)
			}
		}()
		rc = run([]string{"-i", "lo", "-k", keyFile, "-c", "3"}, &out, &errb)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("live capture did not see 3 datagrams in 20 s")
	}
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	if n := strings.Count(out.String(), "token ring=1.2 token_seq=3"); n != 3 {
		t.Fatalf("want 3 decoded tokens, got %d:\n%s", n, out.String())
	}
}
