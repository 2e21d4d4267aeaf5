// Package uplink is the agent's side of the channel to the server: a
// bounded on-disk spool of records with sequence numbers (alerts, response
// records, inventory, profiles) that survives restarts and server outages,
// enrollment with a one-time token, and a client that streams the spool
// over mutual TLS, resends from the last ack after a reconnect (once, in
// order) and runs the server's commands. It never blocks the agent: a full
// spool drops its oldest records and counts them. It never imports server
// or store code.
package uplink
