"""Entry/exit zones of vehicle cameras (multicam/zones.py) and the rules that use them (topology.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from citytrack.data.formats.errors import FormatError
from citytrack.multicam.topology import CameraTopology, Tracklet, TravelModel, fit_zone_links, pair_feasible
from citytrack.multicam.zones import ZoneMap

MODEL = TravelModel(v_min=5.0, v_max=25.0, max_wait=10.0, slack=1.0, overlap_distance=8.0)


def crossroad(width: int = 200, height: int = 100) -> np.ndarray:
    """A ROI with a horizontal road across the whole picture and a vertical one from the top edge
    down to it: three road mouths (left, top, right)."""
    roi = np.zeros((height, width), bool)
    roi[40:60, :] = True
    roi[:50, 90:110] = True
    return roi


def test_roi_zones_are_the_road_mouths_numbered_clockwise() -> None:
    zones = ZoneMap.from_roi(crossroad(), band=5)
    assert zones.zone_ids == [1, 2, 3]
    # clockwise from the top-left corner: the top mouth, then the right one, then the left one
    assert zones.zone_at(np.array([[100, 2], [197, 50], [2, 50]])).tolist() == [1, 2, 3]
    # the middle of the crossroad and the road away from the frame edge are in no zone
    assert zones.zone_at(np.array([[100, 50], [40, 50]])).tolist() == [0, 0]
    # off the road, only within the tolerance of a zone
    assert zones.zone_at(np.array([[2, 63]])).tolist() == [0]
    assert zones.zone_at(np.array([[2, 63]]), tolerance=4).tolist() == [3]
    assert zones.zone_at(np.array([[np.nan, 3.0], [-20, 50]])).tolist() == [0, 3]  # NaN: none; outside: clipped


def test_a_box_cut_by_the_frame_edge_takes_the_zone_of_its_corner() -> None:
    zones = ZoneMap.from_roi(crossroad(), band=5)
    # a car leaving to the right: its bottom centre (x=185) is on the road but 15 px inside the frame
    boxes = np.array([[170.0, 35.0, 30.0, 20.0], [30.0, 35.0, 30.0, 20.0]])
    assert zones.zone_at(np.array([[185.0, 55.0]])).tolist() == [0]
    assert zones.box_zone(boxes).tolist() == [2, 0]


def test_zone_image_and_polygons(tmp_path: Path) -> None:
    labels = np.zeros((100, 200), np.uint8)
    labels[:, :20] = 1
    labels[:, 180:] = 7
    path = tmp_path / "zones.png"
    cv2.imwrite(str(path), labels)
    zones = ZoneMap.from_image(path, (200, 100))
    assert zones.zone_ids == [1, 7] and zones.zone_at(np.array([[190, 50]])).tolist() == [7]
    with pytest.raises(FormatError, match="zones.png.*200x100"):
        ZoneMap.from_image(path, (320, 100))
    colour = tmp_path / "colour.png"
    cv2.imwrite(str(colour), np.dstack([labels, labels * 0, labels]))
    with pytest.raises(FormatError, match="colour.png.*grey"):
        ZoneMap.from_image(colour, (200, 100))
    with pytest.raises(FormatError, match="missing.png.*missing"):
        ZoneMap.from_image(tmp_path / "missing.png", (200, 100))

    drawn = ZoneMap.from_polygons({"2": [[0, 0], [50, 0], [50, 50], [0, 50]]}, (200, 100))
    assert drawn.zone_at(np.array([[10, 10], [100, 80]])).tolist() == [2, 0]
    with pytest.raises(ValueError, match="zone 0"):
        ZoneMap.from_polygons({0: [[0, 0], [5, 0], [5, 5]]}, (200, 100))
    with pytest.raises(ValueError, match="at least 3 points"):
        ZoneMap.from_polygons({3: [[0, 0], [5, 0]]}, (200, 100))


def visit(camera: int, t0: float, t1: float, entry: int, exit_: int, label: int = -1) -> Tracklet:
    """A tracklet with no usable ground point (time and zones decide) from `t0` to `t1` s."""
    times = np.arange(t0, t1 + 1e-9, 0.1)
    t = Tracklet(camera, 1, np.arange(len(times)) + 1.0, times, np.full((len(times), 2), np.nan), label=label)
    t.entry_zone, t.exit_zone = entry, exit_
    return t


def test_zone_links_gate_a_camera_pair() -> None:
    topo = CameraTopology.from_config({}, zone_links={"c001:2>c003:1": [5, 9]})
    left_east = visit(1, 0.0, 3.0, entry=1, exit_=2)
    arrives_west = visit(3, 10.0, 12.0, entry=1, exit_=2)   # 7 s later through the linked zone
    arrives_north = visit(3, 10.0, 12.0, entry=3, exit_=2)  # 7 s later through another zone
    too_late = visit(3, 20.0, 22.0, entry=1, exit_=2)
    assert pair_feasible(left_east, arrives_west, MODEL, topo) and pair_feasible(arrives_west, left_east, MODEL, topo)
    assert not pair_feasible(left_east, arrives_north, MODEL, topo)
    assert not pair_feasible(left_east, too_late, MODEL, topo)
    # a track that ended or started inside the view (zone 0), or left by the zone it came in by (a
    # fragment), is not gated: the travel model decides (no ground point here: time alone cannot refuse)
    assert pair_feasible(visit(1, 0.0, 3.0, entry=1, exit_=0), arrives_north, MODEL, topo)
    assert pair_feasible(visit(1, 0.0, 3.0, entry=2, exit_=2), arrives_north, MODEL, topo)
    # links are directed: nothing is known of c003 -> c001, nor of other camera pairs
    assert pair_feasible(arrives_west, visit(1, 20.0, 22.0, entry=2, exit_=1), MODEL, topo)
    assert pair_feasible(left_east, visit(2, 10.0, 12.0, entry=3, exit_=1), MODEL, topo)
    with pytest.raises(ValueError, match="cA:zone>cB:zone"):
        CameraTopology.from_config({}, zone_links={"c001,c003": [5, 9]})


def test_topology_json_round_trip(tmp_path: Path) -> None:
    topo = CameraTopology.from_config({"c001,c002": [1, 4]}, zone_links={"c001:2>c003:1": [5, 9]})
    path = tmp_path / "topology.json"
    topo.to_json(path)
    back = CameraTopology.from_config(None, file=path)
    assert back.pairs == topo.pairs and back.zone_links == {(1, 2, 3, 1): (5.0, 9.0)}
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        CameraTopology.from_config(None, file=tmp_path / "nowhere.json")


def test_fit_zone_links_brackets_the_gaps_seen() -> None:
    tracklets = []
    for vid, gap in enumerate([6.0, 7.0, 8.0]):
        tracklets += [visit(1, 0.0, 3.0, 1, 2, label=vid), visit(3, 3.0 + gap, 5.0 + gap, 1, 2, label=vid)]
    tracklets += [visit(2, 0.0, 3.0, 1, 0, label=9), visit(3, 9.0, 11.0, 1, 2, label=9)]  # lost in view: no link
    tracklets += [visit(4, 0.0, 3.0, 1, 2, label=10), visit(5, 2.0, 4.0, 1, 2, label=10)]  # overlapping views
    links = fit_zone_links(tracklets, margin=0.25, slack=1.0)
    assert links == {(1, 2, 3, 1): (4.5, 9.5)}  # 6..8 s, widened by a quarter of the spread and 1 s
    # a vehicle driving c006 -> c007 -> c008 links c006 to c008 too (a cluster needs every pair feasible)
    chain = [visit(6, 0.0, 2.0, 1, 2, label=20), visit(7, 4.0, 6.0, 1, 2, label=20), visit(8, 9.0, 10.0, 3, 4, label=20)]
    assert set(fit_zone_links(chain, margin=0.0, slack=0.0)) == {(6, 2, 7, 1), (7, 2, 8, 3), (6, 2, 8, 3)}
    assert fit_zone_links(chain, margin=0.0, slack=0.0)[(6, 2, 8, 3)] == (7.0, 7.0)


def test_one_camera_may_rejoin_a_vehicle_lost_in_view_after_a_longer_gap() -> None:
    model = dataclasses.replace(MODEL, same_camera_max_gap=5.0, same_camera_interior_gap=10.0)
    lost = visit(1, 0.0, 3.0, entry=1, exit_=0)
    found = visit(1, 11.0, 13.0, entry=0, exit_=2)      # 8 s later, also inside the view
    came_back = visit(1, 11.0, 13.0, entry=2, exit_=1)  # 8 s later, in through a zone
    assert pair_feasible(lost, found, model)
    assert not pair_feasible(lost, came_back, model)
    assert not pair_feasible(lost, found, MODEL)  # off by default
    unknown = visit(1, 11.0, 13.0, entry=-1, exit_=-1)  # a camera without zone map
    assert not pair_feasible(visit(1, 0.0, 3.0, -1, -1), unknown, model)
