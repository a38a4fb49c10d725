package proto

// Codes of federation between administrations (peering and the link).
const (
	CodePeeringInvalid      = "peering_invalid"       // a peering token that does not parse or verify; Detail says why (malformed, bad_signature, id_mismatch)
	CodePeeringExpired      = "peering_expired"       // the peering token's 24 hours ran out
	CodePeeringReplayed     = "peering_replayed"      // this peering token was used once already
	CodePeeringNoInvitation = "peering_no_invitation" // a reply to no pending invitation of this administration
	CodePeeringSelf         = "peering_self"          // a token of this administration itself
	CodePeerUnknown         = "peer_unknown"          // no peered administration has this id
	CodeFederationOff       = "federation_off"        // the node was started without federation
)
