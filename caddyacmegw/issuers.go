package caddyacmegw

// procedureIssuer is an issuer whose CA issues through named procedures; a
// registration may name one of them.
type procedureIssuer interface {
	ProcedureNames() []string
}

// emailRefuser is an issuer that cannot put an e-mail address into a
// certificate; RefusesEmail says why.
type emailRefuser interface {
	RefusesEmail() string
}
