"""Pure rules: no I/O, no clock. Every rule takes the instant it answers for."""
