"""api.core.errors.refusal: a batch item's reason, or the server's own error raised again."""

from __future__ import annotations

import pytest

from api.core.errors import Conflict, refusal
from chain.errors import ChainError


def test_a_refused_item_gets_its_reason_and_a_node_down_stops_the_batch():
    assert refusal(Conflict("the loan is repaid")) == "the loan is repaid"
    for down in (ConnectionError("refused"), ChainError("no node")):
        with pytest.raises(type(down)):
            refusal(down)
