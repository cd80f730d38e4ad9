package daemon

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Peer is the identity of a process on the other end of the socket, as the
// kernel reports it (SO_PEERCRED), plus its supplementary groups.
type Peer struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32
}

// AccessPolicy decides who may use the IPC socket: root, the daemon's own
// user (the socket's owner), and the configured uids and gids.
type AccessPolicy struct {
	OwnerUID uint32
	UIDs     []int
	GIDs     []int
}

// Check returns nil when p may connect, or an error that says why not and
// what to configure.
func (a AccessPolicy) Check(p Peer) error {
	if p.UID == 0 || p.UID == a.OwnerUID || slices.Contains(a.UIDs, int(p.UID)) {
		return nil
	}
	if slices.Contains(a.GIDs, int(p.GID)) {
		return nil
	}
	for _, g := range p.Groups {
		if slices.Contains(a.GIDs, int(g)) {
			return nil
		}
	}
	return fmt.Errorf("access denied: uid %d (gid %d) is not allowed to use totemd; add it to ipc.allow_uids or its group to ipc.allow_gids", p.UID, p.GID)
}

// supplementaryGroups reads the groups of process pid from /proc (best
// effort: nil when unreadable).
func supplementaryGroups(pid int32) []uint32 {
	f, err := os.Open("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var gs []uint32
			for _, s := range strings.Fields(rest) {
				if g, err := strconv.ParseUint(s, 10, 32); err == nil {
					gs = append(gs, uint32(g))
				}
			}
			return gs
		}
	}
	return nil
}
