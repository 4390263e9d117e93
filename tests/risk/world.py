"""Small indexed worlds for the risk rules' tests: rows written straight into a migrated
database (the rules read tables; how rows got there is the indexer's tests' business)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sqlalchemy import Engine, insert

from indexer.models import Farmer, Loan, MerchantApproval, TokenTransfer, WindowBlock
from risk.rules import DAY

T0 = 1_760_000_000  # 2025-10-09, inside the shipped LPR table
ZERO = bytes(20)


def wallet(n: int) -> bytes:
    """A distinct 20-byte address."""
    return n.to_bytes(20, "big")


def fid(n: int) -> bytes:
    """A distinct 32-byte farmer id."""
    return (0xF000 + n).to_bytes(32, "big")


@dataclass
class World:
    """Rows written in chain order: each write is its own block, a day apart unless told."""

    engine: Engine
    block: int = 1
    at: int = T0
    _log: itertools.count = field(default_factory=itertools.count)

    def _next(self, after: int) -> tuple[int, int]:
        """Advance chain time by `after` seconds and the block by one."""
        self.at += after
        self.block += 1
        return self.block, self.at

    def farmer(self, n: int, own: bytes, coop: bytes = wallet(900)) -> bytes:
        """Register farmer n with wallet `own`."""
        block, at = self._next(60)
        with self.engine.begin() as c:
            c.execute(
                insert(Farmer).values(farmer=fid(n), cooperative=coop, wallet=own,
                                      block_number=block, log_index=0, block_timestamp=at)
            )  # fmt: skip
        return fid(n)

    def merchant(self, address: bytes) -> None:
        """Approve a merchant."""
        block, at = self._next(60)
        with self.engine.begin() as c:
            c.execute(insert(MerchantApproval).values(
                block_number=block, log_index=0, merchant=address, category=b"\x01" * 32,
                registrar=wallet(800), approved=True, expires_at=at + 365 * DAY,
                block_timestamp=at,
            ))  # fmt: skip

    def loan(self, loan_id: int, farmer: bytes, borrower: bytes, lender: bytes,
             agent: bytes = ZERO, principal: int = 100_000) -> bytes:  # fmt: skip
        """Issue a loan; its escrow is returned (funded by the lender at once)."""
        escrow = wallet(10_000 + loan_id)
        block, at = self._next(60)
        with self.engine.begin() as c:
            c.execute(insert(Loan).values(
                loan_id=loan_id, escrow=escrow, farmer=farmer, lender=lender, borrower=borrower,
                agent=agent, principal_fen=principal, block_number=block, log_index=0,
                block_timestamp=at,
            ))  # fmt: skip
        self.pay(lender, escrow, principal, after=1)
        return escrow

    def pay(self, sender: bytes, recipient: bytes, amount: int, after: int = DAY) -> None:
        """One token transfer, `after` seconds after the previous write."""
        block, at = self._next(after)
        with self.engine.begin() as c:
            c.execute(insert(TokenTransfer).values(
                block_number=block, log_index=next(self._log), token=wallet(700), sender=sender,
                recipient=recipient, amount_fen=amount, tx_hash=block.to_bytes(32, "big"),
                block_timestamp=at,
            ))  # fmt: skip

    def seal(self) -> None:
        """Record the latest block as indexed (the scan's chain time)."""
        with self.engine.begin() as c:
            c.execute(
                insert(WindowBlock).values(number=self.block, hash=b"\x01" * 32,
                                           parent_hash=b"\x00" * 32, timestamp=self.at)
            )  # fmt: skip
