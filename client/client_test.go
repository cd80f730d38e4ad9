package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totem-gcs/totem/ipc"
)

func TestSocketPath(t *testing.T) {
	t.Setenv(ipc.SocketEnv, "")
	if got := (Options{}).SocketPath(); got != ipc.DefaultSocket {
		t.Errorf("default: %s", got)
	}
	t.Setenv(ipc.SocketEnv, "/tmp/env.sock")
	if got := (Options{}).SocketPath(); got != "/tmp/env.sock" {
		t.Errorf("env: %s", got)
	}
	if got := (Options{Socket: "/x"}).SocketPath(); got != "/x" {
		t.Errorf("explicit: %s", got)
	}
}

func TestErrorMatching(t *testing.T) {
	for code, want := range map[ipc.Code]error{
		ipc.TryAgain: ErrTryAgain, ipc.TooBig: ErrTooBig, ipc.NotJoined: ErrNotJoined,
		ipc.Exists: ErrExists, ipc.Invalid: ErrInvalid, ipc.ShuttingDown: ErrShuttingDown,
	} {
		err := error(&RequestError{Op: "send", Code: code, Msg: "m"})
		if !errors.Is(err, want) {
			t.Errorf("code %v does not match %v", code, want)
		}
		if errors.Is(err, ErrDisconnected) {
			t.Errorf("code %v matches ErrDisconnected", code)
		}
	}
	tb := error(&TooBigError{Size: 3 << 20, Limit: 1 << 20})
	if !errors.Is(tb, ErrTooBig) || !strings.Contains(tb.Error(), "1048576") {
		t.Errorf("too big: %v", tb)
	}
	d := error(&DisconnectedError{Reason: "client stopped reading"})
	if !errors.Is(d, ErrDisconnected) || !strings.Contains(d.Error(), "stopped reading") {
		t.Errorf("disconnected: %v", d)
	}
}

func TestConnectWithoutDaemon(t *testing.T) {
	_, err := Connect(context.Background(), Options{Socket: filepath.Join(t.TempDir(), "none")})
	if !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("%v", err)
	}
}
