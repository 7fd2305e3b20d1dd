"""Test helpers: throwaway real servers (Prosody, ngIRCd, PostgreSQL) and raw test clients."""
