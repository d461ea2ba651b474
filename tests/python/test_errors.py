import pytest

import thrifty

BUILTIN_PARENTS = {
    "InvalidArgumentError": ValueError,
    "NotFoundError": KeyError,
    "AlreadyExistsError": ValueError,
    "FailedPreconditionError": RuntimeError,
    "OutOfRangeError": IndexError,
    "ResourceExhaustedError": RuntimeError,
    "DeadlineExceededError": TimeoutError,
    "AgentLimitError": Exception,
    "StepLimitExceeded": Exception,
    "BudgetExceededError": Exception,
    "LoopDetectedError": Exception,
    "UnavailableError": ConnectionError,
    "PermissionDeniedError": PermissionError,
    "UnimplementedError": NotImplementedError,
    "InternalError": RuntimeError,
    "DataLossError": OSError,
}


@pytest.mark.parametrize("name,builtin", sorted(BUILTIN_PARENTS.items()))
def test_each_error_is_a_thrifty_error_and_its_builtin(name, builtin):
    cls = getattr(thrifty, name)
    assert issubclass(cls, thrifty.Error)
    assert issubclass(cls, builtin)
    assert cls.__module__ == "thrifty"


def test_core_status_becomes_typed_exception_catchable_as_builtin():
    with pytest.raises(ValueError) as info:
        thrifty.ModelSpec("m", "openai", -1.0, 1.0)
    assert type(info.value) is thrifty.InvalidArgumentError
    assert "input_per_mtok" in str(info.value) and ">= 0" in str(info.value)


def test_not_found_reads_like_a_message_not_a_repr():
    catalog = thrifty.Catalog([thrifty.ModelSpec("gpt-x", "openai", 1.0, 2.0)])
    with pytest.raises(KeyError) as info:
        catalog.get("gpt-y")
    message = str(info.value)
    assert message.startswith("unknown model 'gpt-y'")  # no surrounding quotes from KeyError
    assert "gpt-x" in message
