"""The local outbox: a mail appears in the folder whole, so a reader polling it never sees half of one."""

import threading

from mlops.local.outbox import Outbox


def test_a_reader_watching_the_folder_only_ever_sees_whole_mails(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    mail = b"Subject: big\r\n\r\n" + b"x" * 4_000_000
    seen_partial: list[int] = []
    done = threading.Event()

    def watch():
        read = set()
        while not done.is_set() or len(read) < 20:
            for path in outbox.messages():
                if path not in read:
                    read.add(path)
                    size = len(path.read_bytes())
                    if size != len(mail):
                        seen_partial.append(size)

    reader = threading.Thread(target=watch)
    reader.start()
    for _ in range(20):
        outbox.write(mail, "big")
    done.set()
    reader.join(timeout=60)
    assert seen_partial == []
    assert len(outbox.messages()) == 20 and not list(outbox.folder.glob("*.part"))
