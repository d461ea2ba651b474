// Bindings for thrifty::embed: the Embedder base class and its three kinds.
//
//   Embedder           base class; holder std::shared_ptr<embed::Embedder>, so other bindings
//                      take any of them through EmbedderFromPy (embed.h)
//   HashingEmbedder    built in, no weights
//   StaticEmbedder     a token-vector table; thrifty.embedders.StaticEmbedder subclasses it to
//                      load WordLlama and tokenize with the `tokenizers` package
//   CallableEmbedder   defined here: calls a Python function, re-acquiring the GIL
//
// Every embed call converts its arguments with the GIL held, allocates the result array, then
// releases the GIL for the C++ work, which writes straight into the array.
#include "embed.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::optional

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errors.h"
#include "register.h"
#include "thrifty/base/strings.h"
#include "thrifty/embed/embedder.h"
#include "thrifty/embed/hashing_embedder.h"
#include "thrifty/embed/static_embedder.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using embed::Embedder;
using embed::HashingEmbedder;
using embed::HashingEmbedderOptions;
using embed::StaticEmbedder;

constexpr size_t kMaxCallableDim = 1 << 16;

// --- Python exceptions raised by callbacks --------------------------------------------------
//
// A callback runs inside Embedder::EmbedBatch, which returns a Status and must not throw. When
// the Python code raises, the exception is kept here, per thread, with the message of the status
// it became; ThrowEmbedStatus re-raises it when that status (or one whose message contains it)
// reaches the binding on the same thread. A C++ caller that swallows the status leaves it behind
// until the next callback on the thread starts.

struct PendingPyError {
  std::string message;
  std::unique_ptr<py::error_already_set> error;
};

PendingPyError& Pending() {
  thread_local PendingPyError pending;
  return pending;
}

std::string TypeName(py::handle object) {
  return std::string(py::str(py::type::of(object).attr("__name__")));
}

// Call with the GIL held, from the catch block of a callback.
absl::Status CallbackRaised(std::string_view who, std::string_view what,
                            py::error_already_set& error) {
  std::string text;
  try {
    text = StrCat(std::string(py::str(error.type().attr("__name__"))), ": ",
                  std::string(py::str(error.value())));
  } catch (const py::error_already_set&) {
    text = "an exception whose str() failed";
  }
  PendingPyError& pending = Pending();
  pending.message = StrCat(who, ": ", what, " raised ", text);
  pending.error = std::make_unique<py::error_already_set>(std::move(error));
  return absl::UnknownError(pending.message);
}

// A Python object held by a C++ embedder, released with the GIL held by whichever thread drops
// the last reference (the cache may drop its embedder with the GIL released).
class PyRef {
 public:
  explicit PyRef(py::object object) : object_(std::move(object)) {}
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() {
    if (!object_) return;
    if (!Py_IsInitialized()) {
      object_.release();  // the interpreter is gone; nothing left to free it into
      return;
    }
    py::gil_scoped_acquire gil;
    object_ = py::object();
  }

  const py::object& get() const { return object_; }

 private:
  py::object object_;
};

// Call with the GIL held. The views stay valid while the strings in `keep` are alive.
std::vector<std::string_view> TextViews(py::handle texts, const char* function,
                                        std::vector<py::object>& keep) {
  if (py::isinstance<py::str>(texts) || py::isinstance<py::bytes>(texts)) {
    throw py::type_error(StrCat(function, ": texts must be a list of str, got ", TypeName(texts),
                                "; use embed(text) for one text"));
  }
  std::vector<std::string_view> views;
  if (py::hasattr(texts, "__len__")) views.reserve(py::len(texts));
  size_t i = 0;
  for (py::handle item : py::iter(texts)) {
    if (!py::isinstance<py::str>(item)) {
      throw py::type_error(
          StrCat(function, ": texts[", i, "] is ", TypeName(item), ", expected str"));
    }
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(item.ptr(), &size);
    if (data == nullptr) throw py::error_already_set();
    keep.push_back(py::reinterpret_borrow<py::object>(item));
    views.emplace_back(data, static_cast<size_t>(size));
    ++i;
  }
  return views;
}

py::array_t<float> EmbedBatchPy(const Embedder& embedder, py::handle texts) {
  std::vector<py::object> keep;
  const std::vector<std::string_view> views = TextViews(texts, "embed_batch", keep);
  const size_t dim = embedder.dim();
  py::array_t<float> result(
      {static_cast<py::ssize_t>(views.size()), static_cast<py::ssize_t>(dim)});
  const std::span<float> out(result.mutable_data(), views.size() * dim);
  absl::Status status;
  {
    py::gil_scoped_release release;
    status = embedder.EmbedBatch(views, out);
  }
  if (!status.ok()) ThrowEmbedStatus(status);
  return result;
}

py::array_t<float> EmbedPy(const Embedder& embedder, const py::str& text) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
  if (data == nullptr) throw py::error_already_set();
  const std::string_view view(data, static_cast<size_t>(size));
  const size_t dim = embedder.dim();
  py::array_t<float> result(static_cast<py::ssize_t>(dim));
  const std::span<float> out(result.mutable_data(), dim);
  absl::Status status;
  {
    py::gil_scoped_release release;
    status = embedder.Embed(view, out);
  }
  if (!status.ok()) ThrowEmbedStatus(status);
  return result;
}

// Call with the GIL held. A list of str for a callback (UTF-8 the core passes is decoded
// strictly: InvalidArgument names the text that is not UTF-8).
absl::StatusOr<py::list> TextsToPy(std::span<const std::string_view> texts, std::string_view who) {
  py::list list(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    PyObject* text =
        PyUnicode_DecodeUTF8(texts[i].data(), static_cast<Py_ssize_t>(texts[i].size()), "strict");
    if (text == nullptr) {
      PyErr_Clear();
      return absl::InvalidArgumentError(StrCat(who, ": text ", i, " is not valid UTF-8"));
    }
    PyList_SET_ITEM(list.ptr(), static_cast<Py_ssize_t>(i), text);  // steals the reference
  }
  return list;
}

// Call with the GIL held. Appends the token ids in `item` (a list or tuple of int, or a 1-D
// integer numpy array) to `ids`.
absl::Status IdsFromPy(py::handle item, size_t text, std::string_view who,
                       std::vector<int32_t>& ids) {
  auto append = [&](long long value, size_t position) -> absl::Status {
    if (value < std::numeric_limits<int32_t>::min() ||
        value > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(StrCat(who, ": token id ", value, " (text ", text,
                                               ", position ", position, ") is not an int32"));
    }
    ids.push_back(static_cast<int32_t>(value));
    return absl::OkStatus();
  };
  if (py::isinstance<py::list>(item) || py::isinstance<py::tuple>(item)) {
    const py::sequence seq = py::reinterpret_borrow<py::sequence>(item);
    const size_t size = seq.size();
    ids.reserve(size);
    for (size_t i = 0; i < size; ++i) {
      PyObject* element = PySequence_Fast_GET_ITEM(seq.ptr(), static_cast<Py_ssize_t>(i));
      if (!PyLong_Check(element)) {
        return absl::InvalidArgumentError(StrCat(who, ": token ids of text ", text,
                                                 " must be int, got ", TypeName(element),
                                                 " at position ", i));
      }
      int overflow = 0;
      const long long value = PyLong_AsLongLongAndOverflow(element, &overflow);
      if (overflow != 0) {
        return absl::InvalidArgumentError(
            StrCat(who, ": token id at text ", text, ", position ", i, " does not fit in int32"));
      }
      if (absl::Status status = append(value, i); !status.ok()) return status;
    }
    return absl::OkStatus();
  }
  if (py::isinstance<py::array>(item)) {
    const py::array array = py::reinterpret_borrow<py::array>(item);
    const char kind = array.dtype().kind();
    if (array.ndim() != 1 || (kind != 'i' && kind != 'u')) {
      return absl::InvalidArgumentError(StrCat(who, ": token ids of text ", text,
                                               " must be a 1-D integer array, got ", array.ndim(),
                                               "-D ", std::string(py::str(array.dtype()))));
    }
    const auto values = py::array_t<long long, py::array::forcecast>::ensure(item);
    if (!values) throw py::error_already_set();
    const auto view = values.unchecked<1>();
    ids.reserve(static_cast<size_t>(view.shape(0)));
    for (py::ssize_t i = 0; i < view.shape(0); ++i) {
      if (absl::Status status = append(view(i), static_cast<size_t>(i)); !status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(StrCat(who, ": token ids of text ", text,
                                           " must be a list of int or a 1-D integer array, got ",
                                           TypeName(item)));
}

// --- CallableEmbedder ----------------------------------------------------------------------

// An Embedder over a Python function fn(list[str]) -> array-like (n, dim) of float32/float64.
//
// EmbedBatch acquires the GIL, calls fn, checks the result (shape, float dtype, finite values)
// and L2-normalizes each row into `out`. When fn raises, the status is Unknown and the binding
// re-raises fn's own exception (see Pending()).
//
// Thread-safety: thread-safe; calls into fn are serialized by the GIL, so fn need only be safe
// to call from any thread.
class CallableEmbedder final : public Embedder {
 public:
  CallableEmbedder(py::object fn, size_t dim, std::string name)
      : fn_(std::move(fn)), dim_(dim), name_(std::move(name)) {}

  size_t dim() const override { return dim_; }
  std::string name() const override { return name_; }
  const py::object& fn() const { return fn_.get(); }

  absl::Status EmbedBatch(std::span<const std::string_view> texts,
                          std::span<float> out) const override {
    if (out.size() != texts.size() * dim_) {
      return absl::InvalidArgumentError(StrCat(name_, ": output holds ", out.size(),
                                               " floats, expected ", texts.size(), " texts x ",
                                               dim_, " = ", texts.size() * dim_));
    }
    if (texts.empty()) return absl::OkStatus();
    if (!Py_IsInitialized()) {
      return absl::FailedPreconditionError(StrCat(name_, ": the Python interpreter has exited"));
    }
    py::gil_scoped_acquire gil;
    Pending().error.reset();  // a stale error, left by a caller that swallowed its status
    try {
      absl::StatusOr<py::list> batch = TextsToPy(texts, name_);
      if (!batch.ok()) return batch.status();
      const py::object result = fn_.get()(*batch);
      return CopyRows(result, texts.size(), out);
    } catch (py::error_already_set& error) {
      return CallbackRaised(name_, "fn", error);
    } catch (const std::exception& error) {
      return absl::InternalError(StrCat(name_, ": ", error.what()));
    }
  }

 private:
  // Call with the GIL held.
  absl::Status CopyRows(const py::object& result, size_t n, std::span<float> out) const {
    if (result.is_none() || py::isinstance<py::str>(result) || py::isinstance<py::bytes>(result)) {
      return absl::InvalidArgumentError(
          StrCat(name_, ": fn must return an array-like of shape (", n, ", ", dim_,
                 ") with float32 or float64 values, got ", TypeName(result)));
    }
    const py::array array = py::module_::import("numpy").attr("asarray")(result);
    const py::dtype dtype = array.dtype();
    if (dtype.kind() != 'f' || (dtype.itemsize() != 4 && dtype.itemsize() != 8)) {
      return absl::InvalidArgumentError(StrCat(
          name_, ": fn must return float32 or float64 values, got ", TypeName(result), " of dtype ",
          std::string(py::str(dtype)), " (expected an array of shape (", n, ", ", dim_, "))"));
    }
    if (array.ndim() != 2 || static_cast<size_t>(array.shape(0)) != n ||
        static_cast<size_t>(array.shape(1)) != dim_) {
      std::string shape = "(";
      for (py::ssize_t i = 0; i < array.ndim(); ++i) {
        StrAppend(&shape, i > 0 ? ", " : "", array.shape(i));
      }
      StrAppend(&shape, array.ndim() == 1 ? ",)" : ")");
      return absl::InvalidArgumentError(StrCat(name_, ": fn returned shape ", shape, " for ", n,
                                               " texts, expected (", n, ", ", dim_, ")"));
    }
    return dtype.itemsize() == 4 ? CopyAs<float>(array, n, out) : CopyAs<double>(array, n, out);
  }

  template <typename T>
  absl::Status CopyAs(const py::array& array, size_t n, std::span<float> out) const {
    const auto view = array.unchecked<T, 2>();  // any strides
    for (size_t r = 0; r < n; ++r) {
      double norm2 = 0;
      for (size_t c = 0; c < dim_; ++c) {
        const T value = view(static_cast<py::ssize_t>(r), static_cast<py::ssize_t>(c));
        if (!std::isfinite(value)) {
          return absl::InvalidArgumentError(StrCat(name_, ": fn returned a non-finite value (",
                                                   static_cast<double>(value), ") at row ", r,
                                                   ", column ", c));
        }
        norm2 += static_cast<double>(value) * static_cast<double>(value);
      }
      const double scale = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
      for (size_t c = 0; c < dim_; ++c) {
        const T value = view(static_cast<py::ssize_t>(r), static_cast<py::ssize_t>(c));
        out[r * dim_ + c] = static_cast<float>(static_cast<double>(value) * scale);
      }
    }
    return absl::OkStatus();
  }

  PyRef fn_;
  size_t dim_;
  std::string name_;
};

// --- StaticEmbedder ------------------------------------------------------------------------

// A StaticEmbedder::Tokenizer over a Python function tokenize(list[str]) -> list of id lists.
StaticEmbedder::Tokenizer PyTokenizer(py::object tokenize, std::string who) {
  auto ref = std::make_shared<PyRef>(std::move(tokenize));
  return [ref = std::move(ref), who = std::move(who)](
             std::span<const std::string_view> texts,
             std::vector<std::vector<int32_t>>* ids) -> absl::Status {
    if (!Py_IsInitialized()) {
      return absl::FailedPreconditionError(StrCat(who, ": the Python interpreter has exited"));
    }
    py::gil_scoped_acquire gil;
    Pending().error.reset();  // a stale error, left by a caller that swallowed its status
    try {
      absl::StatusOr<py::list> batch = TextsToPy(texts, who);
      if (!batch.ok()) return batch.status();
      const py::object result = ref->get()(*batch);
      if (!py::isinstance<py::sequence>(result) || py::isinstance<py::str>(result) ||
          py::len(result) != texts.size()) {
        return absl::InvalidArgumentError(StrCat(who,
                                                 ": tokenize must return one id list per text (",
                                                 texts.size(), "), got ", TypeName(result)));
      }
      ids->assign(texts.size(), {});
      const py::sequence lists = py::reinterpret_borrow<py::sequence>(result);
      for (size_t i = 0; i < texts.size(); ++i) {
        const py::object item = lists[i];
        if (absl::Status s = IdsFromPy(item, i, who, (*ids)[i]); !s.ok()) return s;
      }
      return absl::OkStatus();
    } catch (py::error_already_set& error) {
      return CallbackRaised(who, "tokenize", error);
    } catch (const std::exception& error) {
      return absl::InternalError(StrCat(who, ": ", error.what()));
    }
  };
}

std::shared_ptr<StaticEmbedder> MakeStaticEmbedder(py::handle table, py::object tokenize,
                                                   std::string name) {
  if (!py::isinstance<py::array_t<float, py::array::c_style>>(table)) {
    std::string got = TypeName(table);
    if (py::isinstance<py::array>(table)) {
      const py::array array = py::reinterpret_borrow<py::array>(table);
      got = StrCat(std::string(py::str(array.dtype())), " array",
                   array.flags() & py::array::c_style ? "" : " (not C-contiguous)");
    }
    ThrowStatus(absl::InvalidArgumentError(
        StrCat("StaticEmbedder: table must be a C-contiguous float32 numpy array of shape "
               "(vocab_size, dim), got ",
               got)));
  }
  const auto array = py::reinterpret_borrow<py::array_t<float, py::array::c_style>>(table);
  if (array.ndim() != 2) {
    ThrowStatus(absl::InvalidArgumentError(
        StrCat("StaticEmbedder: table must be 2-D (vocab_size, dim), got ", array.ndim(), "-D")));
  }
  if (!tokenize.is_none() && !PyCallable_Check(tokenize.ptr())) {
    throw py::type_error(
        StrCat("StaticEmbedder: tokenize must be callable or None, got ", TypeName(tokenize)));
  }
  const auto vocab_size = static_cast<size_t>(array.shape(0));
  const auto dim = static_cast<size_t>(array.shape(1));
  StaticEmbedder::Tokenizer tokenizer;
  if (!tokenize.is_none()) tokenizer = PyTokenizer(std::move(tokenize), name);
  const float* data = array.data();
  absl::StatusOr<std::unique_ptr<StaticEmbedder>> embedder;
  {
    py::gil_scoped_release release;
    embedder = StaticEmbedder::Create(std::vector<float>(data, data + vocab_size * dim), vocab_size,
                                      dim, std::move(name), std::move(tokenizer));
  }
  return ValueOrThrow(std::move(embedder));
}

py::array_t<float> EmbedTokenIdsPy(const StaticEmbedder& embedder, py::handle ids) {
  if (py::isinstance<py::str>(ids) || !py::isinstance<py::sequence>(ids)) {
    throw py::type_error(
        StrCat("embed_token_ids: ids must be a list of token-id lists, got ", TypeName(ids)));
  }
  const py::sequence lists = py::reinterpret_borrow<py::sequence>(ids);
  const size_t n = lists.size();
  std::vector<std::vector<int32_t>> owned(n);
  for (size_t i = 0; i < n; ++i) {
    const py::object item = lists[i];
    ThrowIfError(IdsFromPy(item, i, "embed_token_ids", owned[i]));
  }
  const std::vector<std::span<const int32_t>> spans(owned.begin(), owned.end());
  const size_t dim = embedder.dim();
  py::array_t<float> result({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(dim)});
  const std::span<float> out(result.mutable_data(), n * dim);
  absl::Status status;
  {
    py::gil_scoped_release release;
    status = embedder.EmbedTokenIds(spans, out);
  }
  ThrowIfError(status);
  return result;
}

std::shared_ptr<CallableEmbedder> MakeCallableEmbedder(py::object fn, long long dim,
                                                       std::optional<std::string> name) {
  if (!PyCallable_Check(fn.ptr())) {
    throw py::type_error(
        StrCat("CallableEmbedder: fn must be callable (list[str] -> array of "
               "shape (n, dim)), got ",
               TypeName(fn)));
  }
  if (dim < 1 || dim > static_cast<long long>(kMaxCallableDim)) {
    ThrowStatus(absl::InvalidArgumentError(
        StrCat("CallableEmbedder: dim must be in [1, ", kMaxCallableDim, "], got ", dim)));
  }
  if (!name) {
    std::string fn_name = py::hasattr(fn, "__qualname__")
                              ? std::string(py::str(fn.attr("__qualname__")))
                              : TypeName(fn);
    name = StrCat("callable(", fn_name, ",dim=", dim, ")");
  }
  return std::make_shared<CallableEmbedder>(std::move(fn), static_cast<size_t>(dim),
                                            std::move(*name));
}

}  // namespace

std::shared_ptr<Embedder> EmbedderFromPy(py::handle embedder) {
  if (!py::isinstance<Embedder>(embedder)) {
    throw py::type_error(
        StrCat("expected a thrifty.Embedder (thrifty.HashingEmbedder, thrifty.StaticEmbedder or "
               "thrifty.CallableEmbedder(fn, dim) to wrap a Python function), got ",
               TypeName(embedder)));
  }
  return embedder.cast<std::shared_ptr<Embedder>>();
}

void ThrowEmbedStatus(const absl::Status& status) {
  PendingPyError& pending = Pending();
  std::unique_ptr<py::error_already_set> error = std::move(pending.error);
  // `status` may be the callback's own or one a C++ caller wrapped around it.
  const bool caused = error != nullptr && !pending.message.empty() &&
                      FromAbsl(status.message()).find(pending.message) != std::string_view::npos;
  pending.message.clear();
  if (caused) throw py::error_already_set(std::move(*error));
  error.reset();
  ThrowStatus(status);
}

void RegisterEmbed(py::module_& m) {
  py::class_<Embedder, std::shared_ptr<Embedder>>(
      m, "Embedder",
      "Base class of thrifty's embedders: texts -> L2-normalized float32 vectors.\n"
      "A text with no features becomes the zero vector. Not constructible; use\n"
      "HashingEmbedder, StaticEmbedder or CallableEmbedder.")
      .def_property_readonly("dim", &Embedder::dim, "Vector dimension.")
      .def_property_readonly("name", &Embedder::name,
                             "A short description, e.g. 'hashing(dim=256)'.")
      .def("embed", &EmbedPy, py::arg("text"),
           "One text -> a float32 array of shape (dim,), L2-normalized.")
      .def("embed_batch", &EmbedBatchPy, py::arg("texts"),
           "A list of texts -> a float32 array of shape (len(texts), dim), rows L2-normalized.")
      .def("__repr__", [](py::handle self) {
        return StrCat("<thrifty.", TypeName(self), " ", self.cast<const Embedder&>().name(), ">");
      });

  const HashingEmbedderOptions defaults;
  py::class_<HashingEmbedder, Embedder, std::shared_ptr<HashingEmbedder>>(
      m, "HashingEmbedder",
      "Built-in embedder with no weights: word unigrams, word bigrams and character 3- to\n"
      "5-grams, feature-hashed (XXH3) into a signed vector. Deterministic across processes and\n"
      "platforms. Immutable; thread-safe.")
      .def(
          py::init([](long long dim, float word_weight, float bigram_weight, float char_weight,
                      float stopword_weight, int char_ngram_min, int char_ngram_max) {
            HashingEmbedderOptions options;
            // A negative dim reads as 0, which the range check rejects.
            options.dim = dim < 0 ? 0 : static_cast<size_t>(dim);
            if (dim < 0 || static_cast<long long>(options.dim) != dim) {
              ThrowStatus(absl::InvalidArgumentError(
                  StrCat("HashingEmbedder: dim must be in [", embed::kMinHashingDim, ", ",
                         embed::kMaxHashingDim, "], got ", dim)));
            }
            options.word_weight = word_weight;
            options.bigram_weight = bigram_weight;
            options.char_weight = char_weight;
            options.stopword_weight = stopword_weight;
            options.char_ngram_min = char_ngram_min;
            options.char_ngram_max = char_ngram_max;
            return std::shared_ptr<HashingEmbedder>(ValueOrThrow(HashingEmbedder::Create(options)));
          }),
          py::arg("dim") = defaults.dim, py::kw_only(),
          py::arg("word_weight") = defaults.word_weight,
          py::arg("bigram_weight") = defaults.bigram_weight,
          py::arg("char_weight") = defaults.char_weight,
          py::arg("stopword_weight") = defaults.stopword_weight,
          py::arg("char_ngram_min") = defaults.char_ngram_min,
          py::arg("char_ngram_max") = defaults.char_ngram_max);

  py::class_<StaticEmbedder, Embedder, std::shared_ptr<StaticEmbedder>>(
      m, "StaticEmbedder",
      "Mean-pooled static token vectors (WordLlama): a float32 table (vocab_size, dim) and an\n"
      "optional tokenize(list[str]) -> list[list[int]] for embed()/embed_batch(). Without\n"
      "tokenize, only embed_token_ids() works (embed() raises FailedPreconditionError).\n"
      "thrifty.StaticEmbedder() loads WordLlama. Immutable; thread-safe.")
      .def(py::init(&MakeStaticEmbedder), py::arg("table"), py::arg("tokenize") = py::none(),
           py::kw_only(), py::arg("name") = "static",
           "Copies `table` (C-contiguous float32, shape (vocab_size, dim)).")
      .def_property_readonly("vocab_size", &StaticEmbedder::vocab_size)
      .def_property_readonly("has_tokenizer", &StaticEmbedder::has_tokenizer)
      .def("embed_token_ids", &EmbedTokenIdsPy, py::arg("ids"),
           "Token-id lists (list[int] or 1-D integer arrays) -> float32 array (n, dim).");

  py::class_<CallableEmbedder, Embedder, std::shared_ptr<CallableEmbedder>>(
      m, "CallableEmbedder",
      "An embedder over your own function fn(list[str]) -> array-like (n, dim) of float32 or\n"
      "float64, e.g. a sentence-transformers model's encode. Rows are checked (shape, dtype,\n"
      "finite values) and L2-normalized. An exception in fn propagates as is. fn is called with\n"
      "the GIL held, from whichever thread embeds.")
      .def(py::init(&MakeCallableEmbedder), py::arg("fn"), py::arg("dim"), py::kw_only(),
           py::arg("name") = py::none())
      .def_property_readonly("fn", &CallableEmbedder::fn);
}

}  // namespace thrifty::bindings
