// Command chat is a minimal client of totemd: it joins a group, sends each
// line typed on standard input to it, and prints every message and
// membership change of the group, in the order every member sees them.
//
//	go run ./client/examples/chat -group lobby
//
// Set TOTEMD_SOCKET to talk to a daemon on another socket.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/totem-gcs/totem/client"
)

func main() {
	group := flag.String("group", "lobby", "group to join")
	safe := flag.Bool("safe", false, "send with safe delivery")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	h, err := client.Connect(ctx, client.Options{Name: "chat"})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.Join(ctx, *group); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("joined %q as %d:%d; type lines to send\n", *group, h.NodeID(), h.PID())

	go func() {
		g := client.Agreed
		if *safe {
			g = client.Safe
		}
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			// Send blocks while the ring is busy, so typing fast is fine.
			if err := h.Send(ctx, *group, []byte(sc.Text()), g); err != nil {
				log.Printf("send: %v", err)
				return
			}
		}
		stop()
	}()

	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				log.Fatalf("connection lost: %v", h.Err())
			}
			switch ev := ev.(type) {
			case *client.Message:
				fmt.Printf("<%d:%d> %s\n", ev.NodeID, ev.PID, ev.Data)
			case *client.ConfChange:
				for _, m := range ev.Joined {
					fmt.Printf("* %s joined (%s)\n", m, m.Reason)
				}
				for _, m := range ev.Left {
					fmt.Printf("* %s left (%s)\n", m, m.Reason)
				}
				fmt.Printf("* %d member(s) now\n", len(ev.Members))
			}
		case <-ctx.Done():
			h.Leave(context.Background(), *group)
			return
		}
	}
}
