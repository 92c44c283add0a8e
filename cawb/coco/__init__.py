"""The COCO2017 subset builder behind ``scripts/sample_coco.py``.

* :mod:`.subset`: the seeded draw, YOLO labels, the COCO JSON of the subset, the manifest (``build_coco_subset``);
* :mod:`.instances`: the reader of the instances JSON (a whole-file msgspec decode of only the declared fields);
* :mod:`.download`: the resumable, retrying downloader of just the drawn images;
* :mod:`.classes`: COCO category ids to the 80 YOLO class indices and names (a fixed table).

May import: ``cawb.utils``, msgspec, tqdm, yaml. Not ultralytics or torch, nor the
training or experiment layers.
"""
