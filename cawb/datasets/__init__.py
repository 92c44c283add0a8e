"""Datasets for training: the generated offline shapes dataset and the resolution of dataset yamls.

* :mod:`.shapes`: a seeded synthetic detection dataset (YOLO labels + COCO ground truth), written atomically;
* :mod:`.shapes_tasks`: the same shapes for segmentation, pose, OBB and classification (polygons, keypoints,
  oriented boxes, class folders);
* :mod:`.resolve`: ``resolve_dataset_yaml``, which reads a dataset yaml the way ultralytics will, generates the
  shapes data on first use and names what is missing before any training;
* :mod:`.images`: whether a split holds an image ultralytics can read (no images, only damaged ones: one line).

May import: ``cawb.utils``, OpenCV, numpy, PIL, yaml. Not torch or ultralytics at import time, nor any higher layer.
"""
