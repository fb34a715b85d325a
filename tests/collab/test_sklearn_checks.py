"""scikit-learn's estimator checks, on a 2-D array whose first two columns are the ids.

The checks feed numeric feature matrices; here every distinct number in column 0 is a user
and in column 1 an item. The checks listed below cannot apply to an estimator whose inputs
are ids (labels), not features; each says why.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from collab import CollabRegressor

IDS_NOT_FEATURES = {
    "check_n_features_in_after_fitting": (
        "columns other than the two id columns are ignored by design (a ratings frame "
        "often carries timestamps and more), so a different column count is not an error"
    ),
    "check_complex_data": "complex numbers are hashable, hence valid ids",
    "check_estimators_nan_inf": (
        "inf is a valid (if odd) id label; NaN ids are rejected with a message naming the "
        "column, not sklearn's wording"
    ),
    "check_estimators_empty_data_messages": (
        "an X without columns fails because the id column is missing, and the message "
        "names that column instead of counting features"
    ),
    "check_fit2d_1feature": "needs two id columns; one column cannot hold users and items",
    "check_regressors_train": (
        "continuous features as ids make almost every row a new user and item: the "
        "regression problem the check builds has nothing collaborative to learn"
    ),
    "check_fit2d_predict1d": "1-D input is rejected with its own message (X must be 2-D)",
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch training: a rating of weight 2 is not the same as the rating twice "
        "(other batches, another number of steps), as for MLPRegressor"
    ),
}


def expected_failures(estimator):
    return IDS_NOT_FEATURES


@parametrize_with_checks(
    [
        CollabRegressor(
            user_col=0,
            item_col=1,
            n_factors=4,
            epochs=2,
            batch_size=64,
            verbose=0,
            random_state=0,
        )
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
