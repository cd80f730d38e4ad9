package rrp

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGenerateAndReadKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "authkey")
	if err := GenerateKey(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o400 {
		t.Fatalf("key mode %04o, want 0400", st.Mode().Perm())
	}
	k, err := ReadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(k) != KeySize {
		t.Fatalf("key is %d bytes", len(k))
	}
	if err := GenerateKey(p); err == nil || !contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: err = %v", err)
	}
	p2 := filepath.Join(dir, "authkey2")
	if err := GenerateKey(p2); err != nil {
		t.Fatal(err)
	}
	k2, _ := ReadKey(p2)
	if string(k) == string(k2) {
		t.Fatal("two generated keys are equal")
	}
}

func TestReadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	cases := []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing"), "no such file"},
		{write("short", make([]byte, 16), 0o400), "holds 16 bytes, want exactly 32"},
		{write("long", make([]byte, 64), 0o600), "holds 64 bytes"},
		{write("open", make([]byte, 32), 0o644), "must not be accessible by group or others"},
		{dir, "not a regular file"},
	}
	for _, tc := range cases {
		_, err := ReadKey(tc.path)
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("ReadKey(%s): err = %v, want mention of %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if _, err := ReadKey(write("ok", make([]byte, 32), 0o600)); err != nil {
		t.Errorf("mode 0600 refused: %v", err)
	}
}
