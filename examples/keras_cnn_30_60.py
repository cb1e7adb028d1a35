"""The convolution-maths tutorial's 30/60 CNN on MNIST, as written for Keras: only the import prefix
differs (keras -> fastconv.keras).

conv 30@3x3 valid relu - maxpool 2x2 s2 "same" - conv 60@3x3 "same" relu - maxpool 2x2 s2 "same"
- flatten - dense 500 relu - dense 10 softmax; RMSprop lr 1e-4, batch 128, 10 epochs, one-hot labels,
channels-last (28, 28, 1) float64 inputs.

Run (MNIST from local files): FASTCONV_DATA=path/to/mnist python examples/keras_cnn_30_60.py
"""
from fastconv.keras.datasets import mnist
from fastconv.keras.layers import Conv2D, Dense, Flatten, MaxPooling2D
from fastconv.keras.models import Sequential
from fastconv.keras.optimizers import RMSprop
from fastconv.keras.utils import to_categorical

(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train = x_train.reshape(-1, 28, 28, 1) / 255.0
x_test = x_test.reshape(-1, 28, 28, 1) / 255.0
y_train = to_categorical(y_train, 10)
y_test = to_categorical(y_test, 10)

model = Sequential()
model.add(Conv2D(30, (3, 3), padding="valid", activation="relu", input_shape=(28, 28, 1)))
model.add(MaxPooling2D(pool_size=(2, 2), strides=2, padding="same"))
model.add(Conv2D(60, (3, 3), padding="same", activation="relu"))
model.add(MaxPooling2D(pool_size=(2, 2), strides=2, padding="same"))
model.add(Flatten())
model.add(Dense(500, activation="relu"))
model.add(Dense(10, activation="softmax"))
model.summary()

model.compile(loss="categorical_crossentropy", optimizer=RMSprop(learning_rate=1e-4), metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=128, epochs=10, verbose=2, validation_data=(x_test, y_test))

loss, acc = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", loss)
print("Test accuracy:", acc)
