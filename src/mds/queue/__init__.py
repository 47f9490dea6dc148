"""Job queues behind the JobQueue protocol: in-process (embedded) and Redis."""

from mds.queue.base import Delivery, JobQueue

__all__ = ["Delivery", "JobQueue"]
