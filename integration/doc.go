// Package integration holds end-to-end tests of the built system on real
// networks: three totemd processes, each in its own network namespace with
// two links (bridges with no uplink, addresses in 198.18.0.0/15), made and
// driven by the cluster and totemctl tools exactly as a user would.
//
// The tests show that
//   - the ring survives a cut of one node's link without a membership
//     change, in passive and in active link mode, that the cut is seen on
//     both ends and that the link comes back by itself (link_cut_test.go);
//   - a node with the wrong cluster key is refused, logged in plain words,
//     and does not disturb the ring of the others (wrong_key_test.go);
//   - truncated, oversized and forged datagrams sent at a running node are
//     dropped and counted and leave the ring alone (hostile_test.go).
//
// They need root and iproute2 and skip, saying why, without them (and in
// -short mode). They build totemd, totemctl and cluster into a temporary
// directory once per run. Run them with
//
//	go test ./integration/ -v
//
// The fast-profile variant of the link-cut test (token 100 ms) runs only
// with TOTEM_ITG_FAST=1, see link_cut_test.go for why.
//
// The package has no non-test code besides this comment.
package integration
