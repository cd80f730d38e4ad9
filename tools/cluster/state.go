package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// stateVersion is the layout version of state.json.
const stateVersion = 1

// Modes of a cluster.
const (
	modeNetns    = "netns"    // one network namespace per node, bridged links (root)
	modeLoopback = "loopback" // every node on 127.0.0.1 with its own ports (no root)
)

// State is everything `cluster` knows about the cluster in one directory.
// It is saved after every change, so that `down` can undo a half-made `up`.
type State struct {
	Version   int    `json:"version"`
	Mode      string `json:"mode"`
	Nodes     int    `json:"nodes"`
	Links     int    `json:"links"`
	Prefix    string `json:"prefix"`
	Profile   string `json:"profile"`
	LinkMode  string `json:"link_mode"`
	TokenMS   int64  `json:"token_ms,omitempty"`
	BasePort  int    `json:"base_port,omitempty"`
	Totemd    string `json:"totemd"`
	Totemctl  string `json:"totemctl"`
	MadeDir   bool   `json:"made_dir"` // the state directory was created by `up`
	Key       string `json:"key"`
	Resources struct {
		Namespaces []string `json:"namespaces"`
		Bridges    []string `json:"bridges"`
		Veths      []string `json:"veths"` // host-side names; deleting one deletes its pair
		Files      []string `json:"files"` // files and directories made, removed by `down` in reverse order
	} `json:"resources"`
	NodeInfo []NodeInfo `json:"node_info"`

	dir string
}

// NodeInfo describes one node.
type NodeInfo struct {
	ID        int      `json:"id"`
	Namespace string   `json:"namespace,omitempty"`
	Addrs     []string `json:"addrs"` // one per link, as in the config
	Veths     []string `json:"veths,omitempty"`
	Dir       string   `json:"dir"`
	Config    string   `json:"config"`
	Socket    string   `json:"socket"`
	Log       string   `json:"log"`
	PIDFile   string   `json:"pid_file"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

var errNoCluster = errors.New("no cluster")

// loadState reads dir's state.
func loadState(dir string) (*State, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s (make one with `cluster up N`, or set CLUSTER_DIR / --dir)", errNoCluster, dir)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %v (remove the directory's cluster by hand)", statePath(dir), err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("%s: state version %d, this cluster tool reads %d", statePath(dir), s.Version, stateVersion)
	}
	s.dir = dir
	return &s, nil
}

// save writes the state atomically.
func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(s.dir))
}

// node returns node id's info.
func (s *State) node(id int) (*NodeInfo, error) {
	if id < 1 || id > len(s.NodeInfo) {
		return nil, fmt.Errorf("no node %d: the cluster has nodes 1..%d", id, len(s.NodeInfo))
	}
	return &s.NodeInfo[id-1], nil
}

// lockDir takes an exclusive lock on dir, so that commands run from
// several shells do not interleave. The returned function releases it.
func lockDir(dir string) (func(), error) { return flockDir(dir, syscall.LOCK_EX) }

// rlockDir takes a shared lock on dir: readers (status, exec, env) run
// together, and never while a command changes the cluster.
func rlockDir(dir string) (func(), error) { return flockDir(dir, syscall.LOCK_SH) }

func flockDir(dir string, how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
