#include "thrifty/embed/hashing_embedder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "thrifty/base/strings.h"
#include "xxhash.h"

namespace thrifty::embed {
namespace {

// One seed per feature group, so "ab" as a word and "ab" as a character n-gram never share a
// bucket by construction. Fixed forever: changing one changes every vector.
constexpr uint64_t kWordSeed = 0x7468726966747901ull;
constexpr uint64_t kBigramSeed = 0x7468726966747902ull;
constexpr uint64_t kCharSeed = 0x7468726966747903ull;

constexpr int kMaxNgram = 8;

// Frequent English function words, after normalization (lower case, apostrophes dropped).
// Sorted, for binary search.
constexpr std::string_view kStopwords[] = {
    "a",      "about", "after", "all",   "also",   "am",    "an",    "and",   "any",  "are",
    "as",     "at",    "be",    "been",  "being",  "but",   "by",    "can",   "cant", "could",
    "did",    "didnt", "do",    "does",  "doesnt", "doing", "dont",  "each",  "for",  "from",
    "get",    "got",   "had",   "has",   "have",   "he",    "her",   "hers",  "him",  "his",
    "how",    "hows",  "i",     "if",    "im",     "in",    "into",  "is",    "isnt", "it",
    "its",    "ive",   "just",  "me",    "more",   "most",  "my",    "no",    "nor",  "not",
    "of",     "on",    "one",   "or",    "other",  "our",   "out",   "own",   "same", "she",
    "should", "so",    "some",  "such",  "than",   "that",  "the",   "their", "them", "then",
    "there",  "these", "they",  "this",  "those",  "to",    "too",   "us",    "very", "was",
    "we",     "were",  "what",  "whats", "when",   "where", "which", "while", "who",  "whom",
    "why",    "will",  "with",  "would", "you",    "your",  "youre", "yours"};
static_assert(std::is_sorted(std::begin(kStopwords), std::end(kStopwords)));

bool IsStopword(std::string_view word) {
  return std::binary_search(std::begin(kStopwords), std::end(kStopwords), word);
}

struct WordSpan {
  size_t begin;
  size_t end;
};

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII, stray continuation bytes and
// invalid leads, so malformed input is still consumed deterministically, byte by byte).
size_t Utf8Length(unsigned char lead) {
  if (lead >= 0xF0 && lead <= 0xF7) return 4;
  if (lead >= 0xE0) return lead <= 0xEF ? 3 : 1;
  if (lead >= 0xC0) return 2;
  return 1;
}

enum class CharClass { kWord, kSeparator, kSkip };

// Classifies the code point encoded in `seq` (a complete UTF-8 sequence of 2-4 bytes).
CharClass ClassifyNonAscii(std::string_view seq) {
  if (seq == "\xC2\xA0") return CharClass::kSeparator;  // no-break space
  if (seq.size() == 3 && seq[0] == '\xE2' && seq[1] == '\x80') {
    const auto third = static_cast<unsigned char>(seq[2]);
    if (third == 0x98 || third == 0x99) return CharClass::kSkip;  // curly apostrophes ' '
    if (third <= 0x8B) return CharClass::kSeparator;              // U+2000..U+200B spaces
  }
  if (seq == "\xE3\x80\x80") return CharClass::kSeparator;  // ideographic space
  return CharClass::kWord;
}

// Lower-cased words joined by single spaces, with a space before the first word and after the
// last (boundary markers for the character n-grams). Empty when the text has no word.
void Normalize(std::string_view in, std::string& text, std::vector<WordSpan>& words) {
  text.clear();
  words.clear();
  text.push_back(' ');
  bool in_word = false;
  size_t word_begin = 0;
  auto end_word = [&] {
    if (!in_word) return;
    words.push_back({word_begin, text.size()});
    text.push_back(' ');
    in_word = false;
  };
  auto begin_word = [&] {
    if (in_word) return;
    word_begin = text.size();
    in_word = true;
  };
  for (size_t i = 0; i < in.size();) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      ++i;
      if (c == '\'') continue;  // "don't" -> "dont"
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        begin_word();
        text.push_back(static_cast<char>(c));
      } else if (c >= 'A' && c <= 'Z') {
        begin_word();
        text.push_back(static_cast<char>(c - 'A' + 'a'));
      } else {
        end_word();
      }
      continue;
    }
    const size_t length = std::min(Utf8Length(c), in.size() - i);
    const std::string_view seq = in.substr(i, length);
    i += length;
    switch (length == 1 ? CharClass::kWord : ClassifyNonAscii(seq)) {
      case CharClass::kSkip:
        break;
      case CharClass::kSeparator:
        end_word();
        break;
      case CharClass::kWord:
        begin_word();
        text.append(seq);
        break;
    }
  }
  end_word();
  if (words.empty()) text.clear();
}

struct Feature {
  uint64_t hash;
  float weight;
};

uint64_t Hash(std::string_view bytes, uint64_t seed) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

// Adds `features` (sorted and merged here) to `out`, scaled so that the group's feature-space
// vector has norm `group_weight`.
void AddGroup(std::vector<Feature>& features, float group_weight, std::span<float> out) {
  if (features.empty() || group_weight == 0.0f) return;
  std::sort(features.begin(), features.end(),
            // By weight too: the sums below then run in one order on every standard library.
            [](const Feature& a, const Feature& b) {
              return a.hash != b.hash ? a.hash < b.hash : a.weight < b.weight;
            });
  // Merge equal hashes into one feature of weight sqrt(sum of squared weights): a feature seen
  // c times with weight w weighs w * sqrt(c), sublinear in its count.
  size_t unique = 0;
  float norm2 = 0.0f;
  for (size_t i = 0; i < features.size();) {
    float sum2 = 0.0f;
    size_t j = i;
    for (; j < features.size() && features[j].hash == features[i].hash; ++j) {
      sum2 += features[j].weight * features[j].weight;
    }
    features[unique++] = {features[i].hash, std::sqrt(sum2)};
    norm2 += sum2;
    i = j;
  }
  if (norm2 == 0.0f) return;
  const float scale = group_weight / std::sqrt(norm2);
  const uint64_t dim = out.size();
  for (size_t i = 0; i < unique; ++i) {
    const uint64_t hash = features[i].hash;
    const size_t bucket = static_cast<size_t>(((hash & 0xFFFFFFFFull) * dim) >> 32);
    const float value = features[i].weight * scale;
    out[bucket] += (hash >> 63) != 0 ? -value : value;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<HashingEmbedder>> HashingEmbedder::Create(
    const HashingEmbedderOptions& options) {
  if (options.dim < kMinHashingDim || options.dim > kMaxHashingDim) {
    return absl::InvalidArgumentError(StrCat("HashingEmbedder: dim must be in [", kMinHashingDim,
                                             ", ", kMaxHashingDim, "], got ", options.dim));
  }
  const std::pair<const char*, float> weights[] = {{"word_weight", options.word_weight},
                                                   {"bigram_weight", options.bigram_weight},
                                                   {"char_weight", options.char_weight}};
  for (const auto& [field, weight] : weights) {
    if (!std::isfinite(weight) || weight < 0.0f) {
      return absl::InvalidArgumentError(
          StrCat("HashingEmbedder: ", field, " must be a finite number >= 0, got ", weight));
    }
  }
  if (options.word_weight + options.bigram_weight + options.char_weight <= 0.0f) {
    return absl::InvalidArgumentError(
        "HashingEmbedder: word_weight, bigram_weight and char_weight are all 0; at least one "
        "must be > 0");
  }
  if (!(options.stopword_weight >= 0.0f && options.stopword_weight <= 1.0f)) {
    return absl::InvalidArgumentError(StrCat(
        "HashingEmbedder: stopword_weight must be in [0, 1], got ", options.stopword_weight));
  }
  if (options.char_ngram_min < 1 || options.char_ngram_min > options.char_ngram_max ||
      options.char_ngram_max > kMaxNgram) {
    return absl::InvalidArgumentError(
        StrCat("HashingEmbedder: need 1 <= char_ngram_min <= char_ngram_max <= ", kMaxNgram,
               ", got char_ngram_min=", options.char_ngram_min,
               ", char_ngram_max=", options.char_ngram_max));
  }
  return std::unique_ptr<HashingEmbedder>(new HashingEmbedder(options));
}

std::string HashingEmbedder::name() const {
  const HashingEmbedderOptions defaults;
  const HashingEmbedderOptions& o = options_;
  std::string name = StrCat("hashing(dim=", o.dim);
  if (o.word_weight != defaults.word_weight || o.bigram_weight != defaults.bigram_weight ||
      o.char_weight != defaults.char_weight || o.stopword_weight != defaults.stopword_weight ||
      o.char_ngram_min != defaults.char_ngram_min || o.char_ngram_max != defaults.char_ngram_max) {
    StrAppend(&name, ",words=", o.word_weight, ",bigrams=", o.bigram_weight,
              ",chars=", o.char_weight, ",stopwords=", o.stopword_weight,
              ",ngrams=", o.char_ngram_min, "-", o.char_ngram_max);
  }
  name.push_back(')');
  return name;
}

absl::Status HashingEmbedder::EmbedBatch(std::span<const std::string_view> texts,
                                         std::span<float> out) const {
  const size_t dim = options_.dim;
  if (out.size() != texts.size() * dim) {
    return absl::InvalidArgumentError(StrCat("HashingEmbedder: output holds ", out.size(),
                                             " floats, expected ", texts.size(), " texts x ", dim,
                                             " = ", texts.size() * dim));
  }
  std::fill(out.begin(), out.end(), 0.0f);
  // Scratch reused across the batch.
  std::string text;
  std::vector<WordSpan> words;
  std::vector<float> word_weights;
  std::vector<size_t> code_points;
  std::vector<Feature> features;
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::span<float> row = out.subspan(t * dim, dim);
    Normalize(texts[t], text, words);
    if (words.empty()) continue;  // the zero vector
    const std::string_view view(text);
    auto word = [&](size_t i) {
      return view.substr(words[i].begin, words[i].end - words[i].begin);
    };

    word_weights.clear();
    features.clear();
    for (size_t i = 0; i < words.size(); ++i) {
      const float weight = IsStopword(word(i)) ? options_.stopword_weight : 1.0f;
      word_weights.push_back(weight);
      features.push_back({Hash(word(i), kWordSeed), weight});
    }
    AddGroup(features, options_.word_weight, row);

    features.clear();
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      const std::string_view bigram =
          view.substr(words[i].begin, words[i + 1].end - words[i].begin);
      features.push_back(
          {Hash(bigram, kBigramSeed), std::sqrt(word_weights[i] * word_weights[i + 1])});
    }
    AddGroup(features, options_.bigram_weight, row);

    // Character n-grams of each word with its boundary spaces (" word "), weighted as the word.
    features.clear();
    for (size_t w = 0; w < words.size(); ++w) {
      const std::string_view padded =
          view.substr(words[w].begin - 1, words[w].end - words[w].begin + 2);
      code_points.clear();
      for (size_t i = 0; i < padded.size(); ++i) {
        if ((static_cast<unsigned char>(padded[i]) & 0xC0) != 0x80) code_points.push_back(i);
      }
      code_points.push_back(padded.size());
      const size_t count = code_points.size() - 1;
      for (size_t n = options_.char_ngram_min; n <= static_cast<size_t>(options_.char_ngram_max);
           ++n) {
        for (size_t i = 0; i + n <= count; ++i) {
          const std::string_view gram =
              padded.substr(code_points[i], code_points[i + n] - code_points[i]);
          features.push_back({Hash(gram, kCharSeed), word_weights[w]});
        }
      }
    }
    AddGroup(features, options_.char_weight, row);

    float norm2 = 0.0f;
    for (float v : row) norm2 += v * v;
    if (norm2 > 0.0f) {
      const float inv = 1.0f / std::sqrt(norm2);
      for (float& v : row) v *= inv;
    }
  }
  return absl::OkStatus();
}

}  // namespace thrifty::embed
