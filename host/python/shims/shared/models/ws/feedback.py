"""Stand-in for `shared.models.ws.feedback`: the feedback channel names (spec §3.6).

Handlers use it as `FeedbackChannel.llm.value`. Members are also `str`, so a member can be
passed where a channel name is expected.
"""

from enum import Enum


class FeedbackChannel(str, Enum):
    stdout = "stdout"
    stderr = "stderr"
    log = "log"
    llm = "llm"
    metric = "metric"
    custom = "custom"


CHANNEL_NAMES = frozenset(c.value for c in FeedbackChannel)
