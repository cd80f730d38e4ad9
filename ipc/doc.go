// Package ipc defines the wire protocol between totemd and its local
// clients (the client library and totemctl) on the daemon's Unix socket.
//
// Every message is a frame: a 4-byte big-endian length followed by that many
// bytes of msgpack. A connection starts with a handshake: the client sends
// Hello (magic "totemd" and the protocol Version it speaks), the daemon
// answers Welcome (or Bye with a reason, then closes). After that the client
// sends Requests, each with an ID, and the daemon sends ServerMsgs: a Reply
// to each Request (same ID, in request order), Events (deliveries and
// configuration changes of the groups the connection joined) as they
// happen, and at most one Bye with the reason it disconnects the client.
//
// The daemon checks the peer's credentials (SO_PEERCRED) before the
// handshake and names itself and its limits in Welcome: the largest message
// payload it accepts, and the node ID. A frame larger than the daemon's limit
// ends the connection with a Bye that names the limit.
//
// Encode and Decode use the msgpack library. The data path uses
// AppendRequestFrame, AppendReplyFrame, AppendEventFrame, DecodeRequest
// and DecodeServerMsg instead: hand-written codecs that write exactly what
// the library would and read what it writes without reflection or extra
// copies, and leave any shape they do not expect to the library. Both
// sides may mix them freely; the protocol is the same (Version 1). A
// client may write requests without waiting for replies: the daemon reads
// every request already received in one go and answers them in order.
package ipc
