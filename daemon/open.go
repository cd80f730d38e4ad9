package daemon

import (
	"fmt"

	"github.com/totem-gcs/totem/totem"
)

// openEngines creates the transport, the Totem node and the CPG service and
// returns the largest message clients may send.
func (d *Daemon) openEngines(ecfg totem.Config) (int, error) {
	return 0, fmt.Errorf("engines not wired yet")
}
