"""Data: price CSVs read and checked (:mod:`~jaxlstm.data.prices`), target transforms
(:mod:`~jaxlstm.data.transforms`), the tutorial's scaled windows (:mod:`~jaxlstm.data.windows`) and Yahoo downloads
(:mod:`~jaxlstm.data.fetch`). NumPy, pandas and scikit-learn only: nothing here imports JAX.
"""

from jaxlstm.data.fetch import ADJUSTMENTS, fetch_prices, yahoo_csv
from jaxlstm.data.prices import (
    FLOAT32_MAX,
    PRICE_COLUMNS,
    YAHOO_HEADER,
    load_frame,
    load_prices,
    numeric_columns,
    select_dates,
)
from jaxlstm.data.transforms import from_changes, paths, to_changes, to_prices
from jaxlstm.data.windows import (
    DEFAULT_SPLIT,
    DEFAULT_WINDOW,
    Dataset,
    LatestData,
    hash_array,
    load_dataset,
    prediction_windows,
    prepare,
    prepare_as,
    prepare_latest,
    range_warning,
    record,
    training_input,
    window_series,
    window_view,
)

__all__ = [
    "ADJUSTMENTS",
    "DEFAULT_SPLIT",
    "DEFAULT_WINDOW",
    "FLOAT32_MAX",
    "PRICE_COLUMNS",
    "YAHOO_HEADER",
    "Dataset",
    "LatestData",
    "fetch_prices",
    "from_changes",
    "hash_array",
    "load_dataset",
    "load_frame",
    "load_prices",
    "numeric_columns",
    "paths",
    "prediction_windows",
    "prepare",
    "prepare_as",
    "prepare_latest",
    "range_warning",
    "record",
    "select_dates",
    "to_changes",
    "to_prices",
    "training_input",
    "window_series",
    "window_view",
    "yahoo_csv",
]
