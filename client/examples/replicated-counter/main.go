// Command replicated-counter keeps a counter replicated on every member of
// a group: increments are multicast with safe delivery and applied in
// delivery order, so every member holds the same value after the same
// messages. A member that joins late asks for the state and the oldest
// member answers it (state transfer on a configuration change).
//
//	go run ./client/examples/replicated-counter -n 10   # add 10, then print the value
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/totem-gcs/totem/client"
)

const group = "replicated-counter"

// Message kinds: an increment, or a state snapshot for new members.
const (
	kindAdd   = 'a'
	kindState = 's'
)

func encode(kind byte, v int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{kind}, uint64(v))
}

func main() {
	n := flag.Int("n", 1, "increments to add")
	wait := flag.Duration("wait", 2*time.Second, "how long to keep listening after sending")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	h, err := client.Connect(ctx, client.Options{Name: "replicated-counter"})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.Join(ctx, group); err != nil {
		log.Fatal(err)
	}

	var (
		value   int64
		synced  bool // we hold the group's state
		oldest  bool // we are the member that answers newcomers
		pending []int64
		sent    bool
		timeout = time.After(time.Hour)
	)
	me := client.Member{NodeID: h.NodeID(), PID: h.PID()}
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				log.Fatalf("connection lost: %v", h.Err())
			}
			switch ev := ev.(type) {
			case *client.ConfChange:
				if len(ev.Members) == 1 && !synced {
					synced = true // alone: the state is ours
				}
				oldest = len(ev.Members) > 0 && ev.Members[0].NodeID == me.NodeID && ev.Members[0].PID == me.PID
				if synced && oldest && len(ev.Joined) > 0 {
					// Safe delivery: the snapshot comes after every increment
					// delivered so far, on every member.
					if err := h.Send(ctx, group, encode(kindState, value), client.Safe); err != nil {
						log.Fatal(err)
					}
				}
			case *client.Message:
				if len(ev.Data) != 9 {
					continue
				}
				v := int64(binary.BigEndian.Uint64(ev.Data[1:]))
				switch ev.Data[0] {
				case kindState:
					if !synced {
						value, synced = v, true
						for _, p := range pending {
							value += p
						}
						pending = nil
					}
				case kindAdd:
					if synced {
						value += v
					} else {
						pending = append(pending, v)
					}
				}
			}
			if synced && !sent {
				sent = true
				for i := 0; i < *n; i++ {
					if err := h.Send(ctx, group, encode(kindAdd, 1), client.Safe); err != nil {
						log.Fatal(err)
					}
				}
				timeout = time.After(*wait)
			}
		case <-timeout:
			fmt.Printf("counter = %d (node %d, pid %d)\n", value, me.NodeID, me.PID)
			h.Leave(ctx, group)
			return
		case <-ctx.Done():
			return
		}
	}
}
