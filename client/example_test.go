package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/totem-gcs/totem/client"
)

// A member that sends one message and prints what the group delivers.
func Example() {
	ctx := context.Background()
	h, err := client.Connect(ctx, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.Join(ctx, "demo"); err != nil {
		log.Fatal(err)
	}
	if err := h.Send(ctx, "demo", []byte("hello"), client.Safe); err != nil {
		log.Fatal(err)
	}
	for ev := range h.Events() {
		switch ev := ev.(type) {
		case *client.Message:
			fmt.Printf("%d:%d says %s\n", ev.NodeID, ev.PID, ev.Data)
			if ev.NodeID == h.NodeID() && ev.PID == h.PID() {
				return // our own message came back: everyone has it
			}
		case *client.ConfChange:
			fmt.Printf("%s has %d members\n", ev.Group, len(ev.Members))
		}
	}
	log.Fatal(h.Err())
}
