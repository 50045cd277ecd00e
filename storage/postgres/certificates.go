package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

const certificateColumns = `serial, account_id, order_id, names, not_before, not_after, chain_pem, status,
	revoked_at, revocation_reason, issued_at, profile, replaces, replaced_by, version`

func scanCertificate(row pgx.Row) (*storage.Certificate, error) {
	var (
		c         storage.Certificate
		revokedAt pgtype.Timestamptz
	)
	err := row.Scan(&c.Serial, &c.AccountID, &c.OrderID, &c.Names, &c.NotBefore, &c.NotAfter, &c.ChainPEM, &c.Status,
		&revokedAt, &c.RevocationReason, &c.IssuedAt, &c.Profile, &c.Replaces, &c.ReplacedBy, &c.Version)
	if err != nil {
		return nil, err
	}
	c.RevokedAt = fromNull(revokedAt)
	c.NotBefore, c.NotAfter, c.IssuedAt = c.NotBefore.UTC(), c.NotAfter.UTC(), c.IssuedAt.UTC()
	return &c, nil
}

// certificateStore swaps the order (orderSwap's $1 to $14) and inserts the
// certificate ($15 on) only FROM the row the swap updated: a lost swap
// stores no certificate, and a duplicate serial aborts the swap with it.
var certificateStore = swapSQL(`UPDATE orders SET `+orderSet+`
	WHERE namespace = $1 AND id = $2 AND version = $3`, "orders", "id",
	`stored AS (
	INSERT INTO certificates (namespace, serial, account_id, order_id, names, not_before, not_after, chain_pem,
		status, revoked_at, revocation_reason, issued_at, profile, replaces, replaced_by, version)
	SELECT $1, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, 1 FROM swapped
)`)

// StoreCertificate implements storage.Certificates in one statement.
func (s *Store) StoreCertificate(ctx context.Context, c *storage.Certificate, o *storage.Order) error {
	args := append([]any{s.ns, o.ID, o.Version}, orderArgs(o)...)
	args = append(args, c.Serial, c.AccountID, c.OrderID, c.Names, c.NotBefore, c.NotAfter, c.ChainPEM,
		c.Status, nullTime(c.RevokedAt), c.RevocationReason, c.IssuedAt, c.Profile, c.Replaces, c.ReplacedBy)
	if err := s.swap(ctx, "store certificate", "order", o.ID, certificateStore, args...); err != nil {
		return err
	}
	c.Version = 1
	o.Version++
	return nil
}

// GetCertificate implements storage.Certificates.
func (s *Store) GetCertificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	return getRow(ctx, s, "certificate", serial, scanCertificate,
		`SELECT `+certificateColumns+` FROM certificates WHERE namespace = $1 AND serial = $2`, s.ns, serial)
}

// certificateSwap never changes the account, order, profile or the
// certificate it replaces.
var certificateSwap = swapSQL(`UPDATE certificates
	SET names = $4, not_before = $5, not_after = $6, chain_pem = $7, status = $8, revoked_at = $9,
		revocation_reason = $10, issued_at = $11, replaced_by = $12, version = version + 1
	WHERE namespace = $1 AND serial = $2 AND version = $3`, "certificates", "serial")

// UpdateCertificate implements storage.Certificates.
func (s *Store) UpdateCertificate(ctx context.Context, c *storage.Certificate) error {
	return s.updateRow(ctx, "certificate", c.Serial, &c.Version, certificateSwap,
		c.Names, c.NotBefore, c.NotAfter, c.ChainPEM, c.Status, nullTime(c.RevokedAt), c.RevocationReason, c.IssuedAt, c.ReplacedBy)
}
