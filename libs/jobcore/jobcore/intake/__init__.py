"""What may come in: submissions and operations checked, idempotency, strict JSON, admission."""
