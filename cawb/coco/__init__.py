"""The COCO2017 subset builder behind ``scripts/sample_coco.py``.

* :mod:`.subset`: the seeded draw, YOLO labels, the COCO JSON of the subset, the manifest (``build_coco_subset``);
* :mod:`.instances`: the reader of the instances JSON (a whole-file msgspec decode of only the declared fields);
* :mod:`.download`: the resumable, retrying downloader of just the drawn images;
* :mod:`.classes`: COCO category ids to ultralytics' 80 class indices and names.

May import: ``cawb.utils``, msgspec, tqdm, yaml (ultralytics only lazily, for its class mapping). Not torch, nor the
training or experiment layers.
"""
