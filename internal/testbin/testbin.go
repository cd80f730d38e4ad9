// Package testbin builds this module's commands for tests that run them as
// separate processes. Each command is built at most once per test binary,
// into one temporary directory that Cleanup removes.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
)

const module = "github.com/totem-gcs/totem/"

var (
	mu    sync.Mutex
	dir   string
	built = map[string]error{}
)

// Build builds the commands, given as paths inside the module (for example
// "daemon/totemd"), and returns the directory that holds them.
func Build(cmds ...string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "totem-testbin-")
		if err != nil {
			return "", err
		}
		dir = d
	}
	for _, cmd := range cmds {
		err, ok := built[cmd]
		if !ok {
			if out, e := exec.Command("go", "build", "-o", dir+"/", module+cmd).CombinedOutput(); e != nil {
				err = fmt.Errorf("go build %s: %v\n%s", cmd, e, out)
			}
			built[cmd] = err
		}
		if err != nil {
			return "", err
		}
	}
	return dir, nil
}

// Cleanup removes the built commands; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir, built = "", map[string]error{}
	}
}
