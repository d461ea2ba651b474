#include "json_convert.h"

#include <string>
#include <variant>
#include <vector>

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

constexpr int kMaxDepth = 200;
constexpr char kAccepted[] =
    "accepted: dict with str keys, list, tuple, str, int, float, bool, None, or an SDK/pydantic "
    "model";

// Where the converter is; formatted only when an error is raised.
using PathStep = std::variant<std::string_view, size_t>;

class Converter {
 public:
  explicit Converter(std::string_view root) : root_(root) {}

  nlohmann::json Convert(py::handle object) {
    if (path_.size() > kMaxDepth) Fail("nesting deeper than 200 levels (a cycle?)");
    PyObject* o = object.ptr();
    if (o == Py_None) return nullptr;
    if (PyBool_Check(o)) return o == Py_True;
    if (PyLong_CheckExact(o) || PyLong_Check(o)) return ConvertInt(o);
    if (PyFloat_Check(o)) return PyFloat_AS_DOUBLE(o);
    if (PyUnicode_Check(o)) return std::string(Utf8(o));
    if (PyDict_Check(o)) return ConvertDict(o);
    if (PyList_Check(o) || PyTuple_Check(o)) return ConvertSequence(o);
    for (const char* method : {"model_dump", "to_dict"}) {
      if (PyObject_HasAttrString(o, method)) {
        py::object dumped = method[0] == 'm' ? object.attr(method)(py::arg("mode") = "json")
                                             : object.attr(method)();
        if (PyDict_Check(dumped.ptr())) return ConvertDict(dumped.ptr());
      }
    }
    Fail(std::string("cannot convert ") + Py_TYPE(o)->tp_name + " to JSON (" + kAccepted + ")");
  }

 private:
  std::string_view Utf8(PyObject* o) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(o, &size);
    if (data == nullptr) {
      PyErr_Clear();
      Fail("string is not valid UTF-8 (lone surrogate?)");
    }
    return {data, static_cast<size_t>(size)};
  }

  nlohmann::json ConvertInt(PyObject* o) {
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0) return static_cast<int64_t>(value);
    if (overflow > 0) {
      const unsigned long long unsigned_value = PyLong_AsUnsignedLongLong(o);
      if (!PyErr_Occurred()) return static_cast<uint64_t>(unsigned_value);
      PyErr_Clear();
    }
    Fail("integer does not fit in 64 bits");
  }

  nlohmann::json ConvertDict(PyObject* o) {
    nlohmann::json out = nlohmann::json::object();
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    Py_ssize_t pos = 0;
    while (PyDict_Next(o, &pos, &key, &value)) {
      if (!PyUnicode_Check(key)) {
        Fail(std::string("dict key of type ") + Py_TYPE(key)->tp_name +
             " is not a str (JSON object keys are strings)");
      }
      const std::string_view name = Utf8(key);
      path_.emplace_back(name);
      out.emplace(std::string(name), Convert(value));
      path_.pop_back();
    }
    return out;
  }

  nlohmann::json ConvertSequence(PyObject* o) {
    const bool is_list = PyList_Check(o);
    const Py_ssize_t size = is_list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o);
    nlohmann::json out = nlohmann::json::array();
    out.get_ref<nlohmann::json::array_t&>().reserve(static_cast<size_t>(size));
    for (Py_ssize_t i = 0; i < size; ++i) {
      path_.emplace_back(static_cast<size_t>(i));
      out.push_back(Convert(is_list ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i)));
      path_.pop_back();
    }
    return out;
  }

  [[noreturn]] void Fail(const std::string& message) {
    std::string where(root_);
    for (const PathStep& step : path_) {
      if (const auto* key = std::get_if<std::string_view>(&step)) {
        where += "['" + std::string(*key) + "']";
      } else {
        where += "[" + std::to_string(std::get<size_t>(step)) + "]";
      }
    }
    throw py::type_error(where + ": " + message);
  }

  std::string_view root_;
  std::vector<PathStep> path_;
};

}  // namespace

nlohmann::json ToJson(py::handle object, std::string_view what) {
  return Converter(what).Convert(object);
}

py::object FromJson(const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::null:
      return py::none();
    case Type::boolean:
      return py::bool_(value.get<bool>());
    case Type::number_integer:
      return py::int_(value.get<int64_t>());
    case Type::number_unsigned:
      return py::int_(value.get<uint64_t>());
    case Type::number_float:
      return py::float_(value.get<double>());
    case Type::string:
      return py::str(value.get_ref<const std::string&>());
    case Type::array: {
      py::list out(value.size());
      for (size_t i = 0; i < value.size(); ++i) out[i] = FromJson(value[i]);
      return std::move(out);
    }
    case Type::object: {
      py::dict out;
      for (const auto& [key, element] : value.items()) out[py::str(key)] = FromJson(element);
      return std::move(out);
    }
    default:
      return py::none();
  }
}

}  // namespace thrifty::bindings
