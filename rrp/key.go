package rrp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// KeySize is the size of a cluster key in bytes.
const KeySize = 32

// GenerateKey writes a new cluster key of KeySize random bytes to path with
// mode 0400. It refuses to overwrite an existing file.
func GenerateKey(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("rrp: generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("rrp: key file %s already exists; remove it first to replace the cluster key", path)
		}
		return fmt.Errorf("rrp: create key file: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("rrp: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("rrp: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("rrp: write key file: %w", err)
	}
	// The umask may have removed bits but never adds any; make sure the
	// mode is exactly 0400.
	if err := os.Chmod(path, 0o400); err != nil {
		return fmt.Errorf("rrp: chmod key file: %w", err)
	}
	return nil
}

// ReadKey reads a cluster key from path. The file must hold exactly KeySize
// bytes and must not be readable or writable by group or others.
func ReadKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rrp: key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("rrp: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("rrp: key file %s has mode %04o: it must not be accessible by group or others (chmod 0400 %s)", path, perm, path)
	}
	if st.Size() != KeySize {
		return nil, fmt.Errorf("rrp: key file %s holds %d bytes, want exactly %d (make one with totemctl keygen)", path, st.Size(), KeySize)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rrp: key file: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("rrp: key file %s holds %d bytes, want exactly %d", path, len(key), KeySize)
	}
	return key, nil
}
