"""The supervised EdgeTPU worker: the interpreter in a child process, restarted when libedgetpu crashes or hangs.

:mod:`.facade` (the :class:`~.facade.WorkerBackend`), :mod:`.process` (the child's handle), :mod:`.shm`
(shared memory), :mod:`.policy` (restarts and the CPU fallback) and :mod:`.child` (the child itself).
"""
