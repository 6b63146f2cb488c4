"""The payment timeout at scale: burst, steady stream, sweep, scheduler pass, closes per minute."""
