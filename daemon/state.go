package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ringSeqFile is the state file holding the highest ring sequence number
// this node has used (Corosync's ringid file).
const ringSeqFile = "ringseq"

// stateStore persists the ring sequence number in the state directory.
type stateStore struct {
	dir  string
	last uint64
}

func openState(dir string) (*stateStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	s := &stateStore{dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, ringSeqFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("state file: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("state file %s is corrupt (%q): remove it to start from ring sequence 0", filepath.Join(dir, ringSeqFile), strings.TrimSpace(string(b)))
	}
	s.last = v
	return s, nil
}

// RingSeq is the stored ring sequence number (0 when none).
func (s *stateStore) RingSeq() uint64 { return s.last }

// Save stores seq durably (write, fsync, rename) when it is new.
func (s *stateStore) Save(seq uint64) error {
	if seq <= s.last {
		return nil
	}
	if err := writeFileSync(filepath.Join(s.dir, ringSeqFile), strconv.FormatUint(seq, 10)+"\n"); err != nil {
		return err
	}
	s.last = seq
	return nil
}

// incarnationFile holds the transport incarnation of the last start.
const incarnationFile = "incarnation"

// NextIncarnation returns an incarnation above every earlier one of this
// node (the wall clock in nanoseconds, or the stored value plus one when
// the clock stepped back) and stores it durably.
func (s *stateStore) NextIncarnation(nowNanos uint64) (uint64, error) {
	path := filepath.Join(s.dir, incarnationFile)
	var last uint64
	if b, err := os.ReadFile(path); err == nil {
		last, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	inc := max(nowNanos, last+1)
	if err := writeFileSync(path, strconv.FormatUint(inc, 10)+"\n"); err != nil {
		return 0, fmt.Errorf("state file: %w", err)
	}
	return inc, nil
}

// writeFileSync replaces path with data durably (write, fsync, rename).
func writeFileSync(path, data string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
